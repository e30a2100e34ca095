-- Objects of the refreshed schemas that the snapshot no longer has: marked dropped, not deleted.
UPDATE analytics_catalog c
SET dropped_at = now(),
    changed_at = now(),
    refreshed_at = now()
WHERE c.dropped_at IS NULL
  AND (cardinality(%(schemas)s::text[]) = 0 OR c.schema_name = ANY (%(schemas)s::text[]))
  AND c.schema_name <> ALL (%(exclude_schemas)s::text[])
  AND NOT EXISTS (
      SELECT 1 FROM catalog_snapshot s WHERE s.schema_name = c.schema_name AND s.object_name = c.object_name
  )
RETURNING c.schema_name || '.' || c.object_name AS object
