-- Runs past their deadline that were not delivered by it (still open, failed, or delivered late)
-- and whose miss is not recorded yet; locked so concurrent checks record each miss once.
SELECT runs.id, runs.report_id, runs.report_name, runs.audience, runs.trigger, runs.slot, runs.deadline_at,
       runs.status, runs.error, runs.finished_at, reports.owner
FROM analytics_report_runs AS runs
LEFT JOIN analytics_reports AS reports ON reports.id = runs.report_id
WHERE runs.deadline_at IS NOT NULL
  AND runs.deadline_at <= now()
  AND runs.deadline_missed_at IS NULL
  AND runs.status <> 'superseded'
  AND NOT (runs.status = 'delivered' AND runs.finished_at <= runs.deadline_at)
  AND runs.created_at > now() - make_interval(days => %(max_age_days)s)
ORDER BY runs.deadline_at, runs.id
LIMIT %(limit)s
FOR UPDATE OF runs SKIP LOCKED
