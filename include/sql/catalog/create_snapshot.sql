-- Metadata of every relation in scope, read set-based from pg_catalog into a temporary table:
-- one row per table, view, materialized view, partitioned table and foreign table (partitions
-- excluded), plus one row per leaf partition of an in-scope partitioned table (root_oid set),
-- which roll_up_partitions.sql folds into its root.
--
-- Row counts: pg_class.reltuples once the relation has been analyzed or vacuumed (-1 before, since
-- PostgreSQL 14), scaled to the current heap size like the planner does; NULL ("unknown") when
-- never analyzed (or analyzed while empty and filled since); an empty heap is an exact 0.
-- count_exact marks the rows exact_counts.sql may count with count(*): never-analyzed tables up to
-- exact_count_max_bytes, and the objects named in exact_counts (asked).
CREATE TEMP TABLE catalog_snapshot ON COMMIT DROP AS
WITH in_scope AS (
    SELECT c.oid
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
      AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
      AND (cardinality(%(schemas)s::text[]) = 0 OR n.nspname = ANY (%(schemas)s::text[]))
      AND n.nspname <> ALL (%(exclude_schemas)s::text[])
),
leaves AS (
    SELECT c.oid, pg_partition_root(c.oid) AS root_oid
    FROM pg_class c
    WHERE c.relispartition
      AND c.relkind IN ('r', 'f')
      AND pg_partition_root(c.oid) IN (SELECT oid FROM in_scope)
),
relations AS (
    SELECT oid, NULL::oid AS root_oid FROM in_scope
    UNION ALL
    SELECT oid, root_oid FROM leaves
),
asked AS (
    SELECT c.oid
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname || '.' || c.relname = ANY (%(exact_counts)s::text[])
),
columns_of AS (
    SELECT a.attrelid,
           jsonb_agg(
               jsonb_build_object(
                   'name', a.attname,
                   'type', format_type(a.atttypid, a.atttypmod),
                   'nullable', NOT a.attnotnull,
                   -- a default cannot reference columns: relid 0 spares opening the relation
                   'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, 0) END,
                   'comment', cd.description,
                   'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
                   'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END
               )
               ORDER BY a.attnum
           ) AS columns,
           array_agg(a.attname::text ORDER BY array_position(pkc.conkey, a.attnum))
               FILTER (WHERE a.attnum = ANY (pkc.conkey)) AS primary_key
    FROM pg_attribute a
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    LEFT JOIN pg_constraint pkc ON pkc.conrelid = a.attrelid AND pkc.contype = 'p'
    LEFT JOIN pg_description cd
        ON cd.classoid = 'pg_class'::regclass AND cd.objoid = a.attrelid AND cd.objsubid = a.attnum
    WHERE a.attrelid IN (SELECT oid FROM in_scope)
      AND a.attnum > 0
      AND NOT a.attisdropped
    GROUP BY a.attrelid
),
table_comments AS MATERIALIZED (
    SELECT objoid, description
    FROM pg_description
    WHERE classoid = 'pg_class'::regclass AND objsubid = 0
),
foreign_keys AS (
    SELECT con.conrelid,
           jsonb_agg(
               jsonb_build_object(
                   'name', con.conname,
                   'columns', (
                       SELECT jsonb_agg(a.attname ORDER BY k.ord)
                       FROM unnest(con.conkey) WITH ORDINALITY AS k (attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                   ),
                   'references', rn.nspname || '.' || rc.relname,
                   'referenced_columns', (
                       SELECT jsonb_agg(a.attname ORDER BY k.ord)
                       FROM unnest(con.confkey) WITH ORDINALITY AS k (attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                   )
               )
               ORDER BY con.conname
           ) AS foreign_keys
    FROM pg_constraint con
    JOIN pg_class rc ON rc.oid = con.confrelid
    JOIN pg_namespace rn ON rn.oid = rc.relnamespace
    WHERE con.contype = 'f'
      AND con.conparentid = 0
      AND con.conrelid IN (SELECT oid FROM in_scope)
    GROUP BY con.conrelid
)
SELECT snapshot.*,
       -- the structure: a change of it moves changed_at (roll_up_partitions.sql adds the partition count)
       md5(jsonb_build_array(
           object_type, columns, primary_key, foreign_keys, comment, definition, partition_key
       )::text) AS definition_hash
FROM (
SELECT r.oid,
       r.root_oid,
       n.nspname::text AS schema_name,
       c.relname::text AS object_name,
       CASE c.relkind
           WHEN 'r' THEN 'table'
           WHEN 'v' THEN 'view'
           WHEN 'm' THEN 'materialized_view'
           WHEN 'p' THEN 'partitioned_table'
           WHEN 'f' THEN 'foreign_table'
       END AS object_type,
       pg_get_userbyid(c.relowner)::text AS owner,
       d.description AS comment,
       coalesce(col.columns, '[]'::jsonb) AS columns,
       coalesce(col.primary_key, '{}'::text[]) AS primary_key,
       coalesce(fk.foreign_keys, '[]'::jsonb) AS foreign_keys,
       CASE WHEN r.root_oid IS NULL AND c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
       NULL::integer AS partition_count,
       CASE WHEN c.relkind = 'm' THEN c.relispopulated END AS is_populated,
       CASE WHEN c.relkind IN ('r', 'm', 'p') THEN pg_total_relation_size(c.oid) END AS size_bytes,
       round(est.estimate)::bigint AS row_count,
       CASE
           WHEN c.relkind IN ('v', 'p') THEN NULL
           WHEN est.empty THEN 'exact'
           WHEN est.estimate IS NULL THEN 'unknown'
           ELSE 'estimate'
       END AS row_count_method,
       (c.oid IN (SELECT oid FROM asked) OR r.root_oid IN (SELECT oid FROM asked)) AS asked,
       CASE
           WHEN c.relkind NOT IN ('r', 'm') OR (c.relkind = 'm' AND NOT c.relispopulated) OR est.empty THEN false
           WHEN (est.estimate IS NULL AND heap.bytes <= %(exact_count_max_bytes)s)
                OR c.oid IN (SELECT oid FROM asked)
                OR r.root_oid IN (SELECT oid FROM asked)
               THEN has_table_privilege(c.oid, 'SELECT')
           ELSE false
       END AS count_exact,
       CASE WHEN c.relkind IN ('r', 'm', 'p', 'f') THEN
           greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid))
       END AS last_analyzed_at,
       CASE WHEN c.relkind IN ('r', 'm', 'p') THEN
           greatest(pg_stat_get_last_vacuum_time(c.oid), pg_stat_get_last_autovacuum_time(c.oid))
       END AS last_vacuumed_at
FROM relations r
JOIN pg_class c ON c.oid = r.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN table_comments d ON d.objoid = c.oid
LEFT JOIN columns_of col ON col.attrelid = c.oid AND r.root_oid IS NULL
LEFT JOIN foreign_keys fk ON fk.conrelid = c.oid AND r.root_oid IS NULL
CROSS JOIN LATERAL (
    SELECT CASE WHEN c.relkind IN ('r', 'm') THEN pg_relation_size(c.oid) END AS bytes
) AS heap
CROSS JOIN LATERAL (
    SELECT CASE
               WHEN c.relkind NOT IN ('r', 'm', 'f') OR (c.relkind = 'm' AND NOT c.relispopulated) THEN NULL
               WHEN heap.bytes = 0 THEN 0::float8
               WHEN c.reltuples < 0 THEN NULL
               WHEN c.relkind = 'f' THEN c.reltuples::float8
               WHEN c.relpages > 0
                   THEN c.reltuples / c.relpages * (heap.bytes / current_setting('block_size')::float8)
           END AS estimate,
           -- an empty heap holds no rows: an exact zero without a scan
           coalesce(heap.bytes = 0 AND (c.relkind = 'r' OR c.relispopulated), false) AS empty
) AS est
) AS snapshot
