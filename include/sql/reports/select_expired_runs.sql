-- Runs whose files are past the report's retention and not cleaned up yet.
SELECT runs.id, runs.report_name, runs.location, runs.format, runs.chart,
       coalesce(array_agg(d.location) FILTER (WHERE d.location IS NOT NULL), '{}') AS copies
FROM analytics_report_runs AS runs
LEFT JOIN analytics_report_deliveries AS d
       ON d.run_id = runs.id AND d.channel = 'object_storage' AND d.status = 'sent'
WHERE runs.cleaned_at IS NULL
  AND runs.location IS NOT NULL
  AND runs.status NOT IN ('pending', 'running')
  AND coalesce(runs.generated_at, runs.created_at)
      < %(now)s - make_interval(days => runs.retention_days)
GROUP BY runs.id
ORDER BY runs.id
