-- Schema {schema_name} and everything in it belong to the platform's role (a dbt target, the demo
-- source data): it builds, replaces and refreshes what is there. Created when missing.
DO $schema$
DECLARE
    rel record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = {schema_name}) THEN
        EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', {schema_name}, {platform_name});
    ELSE
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', {schema_name}, {platform_name});
    END IF;
    FOR rel IN
        SELECT c.oid::regclass AS name,
               CASE c.relkind
                   WHEN 'v' THEN 'VIEW'
                   WHEN 'm' THEN 'MATERIALIZED VIEW'
                   WHEN 'f' THEN 'FOREIGN TABLE'
                   WHEN 'S' THEN 'SEQUENCE'
                   ELSE 'TABLE'
               END AS kind
        FROM pg_class c
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = {schema_name})
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = {platform_name})
          -- sequences of serial and identity columns move with their table
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT FROM pg_depend d
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I', rel.kind, rel.name, {platform_name});
    END LOOP;
END
$schema$;
