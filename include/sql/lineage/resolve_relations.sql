-- The relations a query names, resolved the way this session's role resolves them: a qualified
-- name in its schema, an unqualified one in the first schema of the effective search path
-- (current_schemas: the schemas that exist and the role may use, pg_catalog first) that has it.
-- Plain views are expanded to what their rewrite rule depends on (pg_depend), recursively;
-- materialized views are not (they change only when refreshed, which is an event of their own).
-- One row per reference (ord) and relation it reads; a reference that resolves to nothing gets
-- one row with NULL names. System catalogs are left out.
WITH RECURSIVE refs AS (
    SELECT r.ord, r.schema_name, r.relation_name
    FROM jsonb_to_recordset(%(refs)s::jsonb) AS r (ord integer, schema_name text, relation_name text)
),
search_path AS (
    SELECT s.nspname, s.position
    FROM unnest(current_schemas(true)) WITH ORDINALITY AS s (nspname, position)
),
named AS (
    SELECT DISTINCT ON (refs.ord) refs.ord, c.oid
    FROM refs
    JOIN pg_class c ON c.relname = refs.relation_name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN search_path p ON p.nspname = n.nspname
    WHERE (refs.schema_name IS NOT NULL AND n.nspname = refs.schema_name)
       OR (refs.schema_name IS NULL AND p.position IS NOT NULL)
    ORDER BY refs.ord, p.position
),
reads (ord, oid) AS (
    SELECT ord, oid FROM named
    UNION
    SELECT reads.ord, d.refobjid
    FROM reads
    JOIN pg_class v ON v.oid = reads.oid AND v.relkind = 'v'
    JOIN pg_rewrite w ON w.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
)
SELECT refs.ord, n.nspname::text AS schema_name, c.relname::text AS relation_name
FROM refs
LEFT JOIN reads ON reads.ord = refs.ord
LEFT JOIN pg_class c ON c.oid = reads.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE reads.oid IS NULL
   OR (c.oid IS NOT NULL AND n.nspname NOT IN ('pg_catalog', 'information_schema'))
ORDER BY refs.ord, schema_name, relation_name
