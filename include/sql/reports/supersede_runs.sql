-- Older scheduled runs of a report that were never generated are replaced by the newer slot:
-- a report that missed several slots is generated once, for the latest.
UPDATE analytics_report_runs
SET status = 'superseded', finished_at = now(), claimed_by = NULL, claim_expires_at = NULL,
    error = coalesce(error || '; ', '') || 'superseded by the run for slot ' || %(slot)s::text
WHERE report_id = %(report_id)s
  AND trigger = 'scheduled'
  AND slot < %(slot)s
  AND (status = 'pending' OR (status = 'running' AND claim_expires_at < now()))
