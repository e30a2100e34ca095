-- Database time and the last start of each job (any status): the input of the schedule decisions.
SELECT now() AS now,
       j.job,
       (SELECT max(l.started_at) FROM analytics_refresh_log l WHERE l.job = j.job) AS last_started
FROM unnest(%(jobs)s::text[]) AS j (job)
