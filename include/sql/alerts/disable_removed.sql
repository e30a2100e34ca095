-- Alerts kept as code whose definition is gone from every file: disabled, history kept.
-- Alerts of files that could not be read this time are left as they are.
UPDATE analytics_alerts
SET enabled = false, updated_at = now()
WHERE source = 'yaml'
  AND enabled
  AND NOT (name = ANY (%(keep)s::text[]))
  AND (source_file IS NULL OR NOT (source_file = ANY (%(unreadable)s::text[])))
RETURNING name
