-- One query-statistics sample at a time (released at commit).
SELECT pg_advisory_xact_lock(hashtextextended('analytics_platform.query_statistics', 0))
