-- The materialized views in scope and, for each, the in-scope materialized views it reads,
-- directly or through plain views: the rewrite rule of a view depends (pg_depend) on every
-- relation its query reads. The walk goes through plain views only; an edge to another
-- materialized view ends it (that view has its own edges). sources: every relation the walk
-- reached (tables, plain views, materialized views; system catalogs left out).
WITH RECURSIVE mviews AS (
    SELECT c.oid, n.nspname::text AS schema_name, c.relname::text AS view_name
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'm'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
      AND (cardinality(%(schemas)s::text[]) = 0 OR n.nspname = ANY (%(schemas)s::text[]))
      AND n.nspname <> ALL (%(exclude_schemas)s::text[])
),
reads AS (
    SELECT DISTINCT r.ev_class AS reader, d.refobjid AS source
    FROM pg_rewrite r
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
    WHERE d.refclassid = 'pg_class'::regclass
      AND d.refobjid <> r.ev_class
),
walk (mview, source) AS (
    SELECT m.oid, rd.source
    FROM mviews m
    JOIN reads rd ON rd.reader = m.oid
    UNION
    SELECT w.mview, rd.source
    FROM walk w
    JOIN pg_class v ON v.oid = w.source AND v.relkind = 'v'
    JOIN reads rd ON rd.reader = w.source
)
SELECT m.schema_name,
       m.view_name,
       coalesce(
           array_agg(DISTINCT s.schema_name || '.' || s.view_name) FILTER (WHERE s.oid IS NOT NULL),
           '{}'::text[]
       ) AS reads,
       coalesce(
           array_agg(DISTINCT sn.nspname || '.' || sc.relname) FILTER (
               WHERE sc.relkind IN ('r', 'p', 'v', 'm', 'f') AND sn.nspname NOT IN ('pg_catalog', 'information_schema')
           ),
           '{}'::text[]
       ) AS sources
FROM mviews m
LEFT JOIN walk w ON w.mview = m.oid
LEFT JOIN mviews s ON s.oid = w.source AND s.oid <> m.oid
LEFT JOIN pg_class sc ON sc.oid = w.source AND sc.oid <> m.oid
LEFT JOIN pg_namespace sn ON sn.oid = sc.relnamespace
GROUP BY m.schema_name, m.view_name
ORDER BY m.schema_name, m.view_name
