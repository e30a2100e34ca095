-- Enabled definitions ({table}: analytics_alerts or analytics_reports) whose relations must be
-- worked out (again): never done, their SQL or declared relations changed since, some names were
-- not found, or it was done more than max_age seconds ago (a view read may have been redefined).
SELECT id, name, sql, declared_reads, reads_hash AS found_from,
       md5(coalesce(sql, '') || E'\n' || coalesce(array_to_string(declared_reads, ','), '')) AS reads_hash
FROM {table}
WHERE enabled
  AND (
        reads_hash IS DISTINCT FROM md5(coalesce(sql, '') || E'\n' || coalesce(array_to_string(declared_reads, ','), ''))
     OR (reads_origin = 'sql' AND reads_note IS NOT NULL)
     OR reads_found_at < now() - make_interval(secs => %(max_age)s)
  )
ORDER BY id
