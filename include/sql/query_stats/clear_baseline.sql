-- The baseline is replaced by this sample (see insert_baseline.sql).
DELETE FROM analytics_query_stats_baseline
