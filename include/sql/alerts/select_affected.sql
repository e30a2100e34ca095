-- Enabled alerts evaluated on change (schedule on_change or clock_and_change) that read one of
-- the relations that changed (schema.table), not yet checked in this DAG run. Their
-- check_interval does not hold them back: a change is a reason to look now.
SELECT id
FROM analytics_alerts
WHERE enabled
  AND schedule IN ('on_change', 'clock_and_change')
  AND reads && %(changed)s::text[]
  AND last_run_id IS DISTINCT FROM %(run_id)s
ORDER BY id
