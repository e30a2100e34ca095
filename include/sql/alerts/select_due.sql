-- Enabled alerts due for a check on the clock in this DAG run: evaluated on the clock (schedule),
-- not yet checked in it, and their own check_interval (if any) has passed (10 percent slack so a
-- 5-minute alert on a 5-minute schedule is not skipped for arriving a second early). Named alerts
-- are checked regardless of interval and schedule.
SELECT id
FROM analytics_alerts
WHERE enabled
  AND last_run_id IS DISTINCT FROM %(run_id)s
  AND (
        cardinality(%(names)s::text[]) > 0 AND name = ANY (%(names)s::text[])
     OR cardinality(%(names)s::text[]) = 0 AND schedule IN ('clock', 'clock_and_change') AND (
            check_interval_seconds IS NULL
         OR last_evaluated_at IS NULL
         OR last_evaluated_at <= now() - make_interval(secs => check_interval_seconds * 0.9)
        )
  )
ORDER BY id
