-- Fold leaf partitions into their partitioned root: partition count, size and row count are
-- sums; the row count is 'unknown' if any partition's is, 'exact' if all are; last analyze and
-- vacuum are the least recent of the partitions (NULL while one never was); the partition count
-- is part of the structure (definition_hash).
WITH parts AS (
    SELECT root_oid,
           count(*)::integer AS partitions,
           sum(size_bytes) AS size_bytes,
           sum(row_count) AS row_count,
           bool_or(row_count_method = 'unknown') AS any_unknown,
           bool_and(row_count_method = 'exact') AS all_exact,
           CASE WHEN bool_and(last_analyzed_at IS NOT NULL) THEN min(last_analyzed_at) END AS last_analyzed_at,
           CASE WHEN bool_and(last_vacuumed_at IS NOT NULL) THEN min(last_vacuumed_at) END AS last_vacuumed_at
    FROM catalog_snapshot
    WHERE root_oid IS NOT NULL
    GROUP BY root_oid
),
roots AS (
    SELECT r.oid, p.*
    FROM catalog_snapshot r
    LEFT JOIN parts p ON p.root_oid = r.oid
    WHERE r.object_type = 'partitioned_table'
)
UPDATE catalog_snapshot s
SET partition_count = coalesce(roots.partitions, 0),
    size_bytes = coalesce(s.size_bytes, 0) + coalesce(roots.size_bytes, 0),
    row_count = CASE
        WHEN roots.root_oid IS NULL THEN 0
        WHEN roots.any_unknown THEN NULL
        ELSE roots.row_count
    END,
    row_count_method = CASE
        WHEN roots.root_oid IS NULL OR roots.all_exact THEN 'exact'
        WHEN roots.any_unknown THEN 'unknown'
        ELSE 'estimate'
    END,
    last_analyzed_at = CASE WHEN roots.root_oid IS NULL THEN s.last_analyzed_at ELSE roots.last_analyzed_at END,
    last_vacuumed_at = CASE WHEN roots.root_oid IS NULL THEN s.last_vacuumed_at ELSE roots.last_vacuumed_at END,
    definition_hash = md5(s.definition_hash || ':' || coalesce(roots.partitions, 0))
FROM roots
WHERE s.oid = roots.oid
