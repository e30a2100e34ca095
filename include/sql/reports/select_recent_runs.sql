-- The latest runs (optionally of one report) with their deliveries, for `python -m include reports runs`.
SELECT runs.id, runs.report_name, runs.audience, runs.trigger, runs.slot, runs.status, runs.attempts, runs.rows, runs.bytes,
       runs.location, runs.error,
       coalesce(string_agg(d.channel || ':' || d.status, ' ' ORDER BY d.id), '') AS deliveries,
       string_agg(d.error, '; ' ORDER BY d.id) FILTER (WHERE d.status <> 'sent') AS delivery_errors
FROM analytics_report_runs AS runs
LEFT JOIN analytics_report_deliveries AS d ON d.run_id = runs.id
WHERE %(report)s::text IS NULL OR runs.report_name = %(report)s
GROUP BY runs.id
ORDER BY runs.id DESC
LIMIT %(limit)s
