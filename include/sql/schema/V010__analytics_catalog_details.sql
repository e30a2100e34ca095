-- Catalog refresh (analytics DAG): what a catalog row records beyond the seed's columns.
--   row_count_method: 'estimate' (pg_class.reltuples scaled to the current size, once analyzed),
--   'exact' (count(*): small never-analyzed tables, or asked for), 'unknown' (never analyzed);
--   NULL for views, which hold no rows.
ALTER TABLE analytics_catalog
    ADD COLUMN relation_oid    oid,
    ADD COLUMN owner           text,
    ADD COLUMN foreign_keys    jsonb   NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN definition      text,
    ADD COLUMN partition_key   text,
    ADD COLUMN partition_count integer CHECK (partition_count IS NULL OR partition_count >= 0),
    ADD COLUMN is_populated    boolean;

COMMENT ON COLUMN analytics_catalog.columns IS
    'one object per column in position order: name, type, nullable, default, comment, identity, generated';
COMMENT ON COLUMN analytics_catalog.row_count_method IS
    'estimate (reltuples, scaled to the current size) | exact (count(*)) | unknown (never analyzed); NULL for views';
COMMENT ON COLUMN analytics_catalog.definition_hash IS
    'md5 of the structure (type, columns, keys, comment, definition, partitioning): a change sets changed_at';
COMMENT ON COLUMN analytics_catalog.refreshed_at IS 'when a catalog refresh last wrote new values into this row';
COMMENT ON COLUMN analytics_catalog.dropped_at IS 'when a catalog refresh first missed the object (NULL while it exists)';

-- The analytics DAG reads a run's rows back (materialized-view summary, notifications).
CREATE INDEX analytics_refresh_log_run_idx ON analytics_refresh_log (dag_run_id, job) WHERE dag_run_id IS NOT NULL;
