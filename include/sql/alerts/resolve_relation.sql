-- A table, view or materialized view by schema and name, as PostgreSQL knows it.
SELECT n.nspname AS schema_name, c.relname AS object_name, c.relkind
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relname = %(name)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
