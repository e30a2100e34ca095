-- Write the snapshot into analytics_catalog in one set-based statement. Rows whose values did not
-- change are not rewritten; a change of structure moves changed_at; a dropped object that is back
-- loses its dropped_at. (The catalog refresh holds an advisory lock, so no one inserts concurrently.)
MERGE INTO analytics_catalog AS c
USING catalog_snapshot AS s
ON c.schema_name = s.schema_name AND c.object_name = s.object_name
WHEN MATCHED AND (
    (c.definition_hash, c.relation_oid, c.owner, c.is_populated, c.size_bytes, c.row_count,
     c.row_count_method, c.last_analyzed_at, c.last_vacuumed_at, c.dropped_at)
    IS DISTINCT FROM
    (s.definition_hash, s.oid, s.owner, s.is_populated, s.size_bytes, s.row_count,
     s.row_count_method, s.last_analyzed_at, s.last_vacuumed_at, NULL::timestamptz)
) THEN UPDATE SET
    object_type      = s.object_type,
    relation_oid     = s.oid,
    owner            = s.owner,
    comment          = s.comment,
    columns          = s.columns,
    primary_key      = s.primary_key,
    foreign_keys     = s.foreign_keys,
    definition       = s.definition,
    partition_key    = s.partition_key,
    partition_count  = s.partition_count,
    is_populated     = s.is_populated,
    size_bytes       = s.size_bytes,
    row_count        = s.row_count,
    row_count_method = s.row_count_method,
    last_analyzed_at = s.last_analyzed_at,
    last_vacuumed_at = s.last_vacuumed_at,
    definition_hash  = s.definition_hash,
    changed_at       = CASE
        WHEN c.dropped_at IS NOT NULL OR c.definition_hash IS DISTINCT FROM s.definition_hash THEN now()
        ELSE c.changed_at
    END,
    refreshed_at     = now(),
    dropped_at       = NULL
WHEN NOT MATCHED THEN INSERT (
    schema_name, object_name, object_type, relation_oid, owner, comment, columns, primary_key,
    foreign_keys, definition, partition_key, partition_count, is_populated, size_bytes, row_count,
    row_count_method, last_analyzed_at, last_vacuumed_at, definition_hash
) VALUES (
    s.schema_name, s.object_name, s.object_type, s.oid, s.owner, s.comment, s.columns, s.primary_key,
    s.foreign_keys, s.definition, s.partition_key, s.partition_count, s.is_populated, s.size_bytes, s.row_count,
    s.row_count_method, s.last_analyzed_at, s.last_vacuumed_at, s.definition_hash
)
