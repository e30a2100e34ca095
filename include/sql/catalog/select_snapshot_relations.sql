-- The relations of this refresh's snapshot (schema.name), for its lineage: at most max_relations.
SELECT schema_name || '.' || object_name
FROM catalog_snapshot
WHERE root_oid IS NULL
ORDER BY schema_name, object_name
LIMIT %(max_relations)s
