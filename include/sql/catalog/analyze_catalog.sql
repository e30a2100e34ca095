-- After a large write (the first refresh, a new schema): fresh planner statistics for the
-- drop-marking join, instead of waiting for autovacuum.
ANALYZE analytics_catalog
