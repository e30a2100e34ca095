-- Close matches for a relation name that was not found (for the error message).
SELECT n.nspname || '.' || c.relname
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
  AND (c.relname ILIKE '%%' || %(name)s || '%%' OR %(name)s ILIKE '%%' || c.relname || '%%')
ORDER BY 1
LIMIT 5
