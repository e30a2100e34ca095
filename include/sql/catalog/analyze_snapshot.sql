-- Planner statistics on the join keys only (cheap): the statements below join the snapshot with
-- analytics_catalog.
ANALYZE catalog_snapshot (schema_name, object_name)
