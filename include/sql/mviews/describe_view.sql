-- What decides the refresh mode: CONCURRENTLY needs a populated view and a unique index that
-- uses only plain columns and covers every row (no expression, no WHERE clause), valid and ready.
SELECT c.relispopulated AS populated,
       (
           SELECT i.indexrelid::regclass::text
           FROM pg_index i
           WHERE i.indrelid = c.oid
             AND i.indisunique
             AND i.indisvalid
             AND i.indisready
             AND i.indimmediate
             AND i.indpred IS NULL
             AND i.indexprs IS NULL
           ORDER BY i.indexrelid
           LIMIT 1
       ) AS unique_index
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relname = %(name)s
  AND c.relkind = 'm'
