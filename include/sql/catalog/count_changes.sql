-- What the snapshot adds and changes, against analytics_catalog before it is written. A dropped
-- object that is back counts as added; changed means a different structure (definition_hash).
SELECT count(*) AS total,
       count(*) FILTER (WHERE c.id IS NULL OR c.dropped_at IS NOT NULL) AS added,
       count(*) FILTER (
           WHERE c.id IS NOT NULL AND c.dropped_at IS NULL AND c.definition_hash IS DISTINCT FROM s.definition_hash
       ) AS changed
FROM catalog_snapshot s
LEFT JOIN analytics_catalog c ON c.schema_name = s.schema_name AND c.object_name = s.object_name
