-- Runs with work left: not generated yet (attempts remaining, claim free or expired), or generated
-- with deliveries outstanding. Old leftovers are not picked up again.
SELECT id
FROM analytics_report_runs
WHERE created_at > now() - make_interval(days => %(max_age_days)s)
  AND trigger <> 'invalid'
  AND (
        (status = 'pending' AND attempts < %(max_attempts)s)
     OR (status = 'running' AND claim_expires_at < now() AND attempts < %(max_attempts)s)
     OR status = 'generated'
  )
ORDER BY slot, id
