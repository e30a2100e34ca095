-- One catalog refresh at a time (released at commit); returns the refresh's start time.
SELECT now() AS started_at, pg_advisory_xact_lock(hashtextextended('analytics_platform.catalog_refresh', 0))
