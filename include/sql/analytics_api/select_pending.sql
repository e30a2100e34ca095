-- What was refreshed since the last notification the analytics service accepted (at most the last
-- %(lookback_hours)s hours): successful catalog and materialized-view refreshes finished after it.
-- A failed notification leaves its refreshes pending: the next one includes them.
WITH last_delivered AS (
    SELECT max((details ->> 'until')::timestamptz) AS until
    FROM analytics_refresh_log
    WHERE job = 'analytics_api' AND status = 'success'
)
SELECT l.job, l.target, l.finished_at, l.details, d.until AS since
FROM analytics_refresh_log AS l
CROSS JOIN last_delivered AS d
WHERE l.job IN ('catalog', 'materialized_views')
  AND l.status = 'success'
  AND l.finished_at > greatest(coalesce(d.until, '-infinity'), %(until)s - make_interval(hours => %(lookback_hours)s))
  AND l.finished_at <= %(until)s
ORDER BY l.finished_at, l.id
