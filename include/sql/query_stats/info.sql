-- The extension's own counters: evictions (dealloc) and the time of the last full reset.
SELECT now() AS sampled_at, i.dealloc, i.stats_reset, (SELECT count(*) FROM pgss_now) AS entries
FROM {schema}.pg_stat_statements_info AS i
