-- The reader (and the platform's role, for the catalog's counts) may read every table, view and
-- materialized view of schema {schema_name}, except the platform's own tables; tables that the
-- creator roles make there later become readable too (default privileges), except the platform's
-- own tables again: its role gets no default privileges in {platform_schema_name}.
DO $grant$
DECLARE
    rel regclass;
    creator text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = {schema_name}) THEN
        RAISE EXCEPTION 'schema % does not exist: create it, or let the platform own it (--own-schema %)',
            {schema_name}, {schema_name};
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I', {schema_name}, {reader_name}, {platform_name});
    FOR rel IN
        SELECT c.oid::regclass
        FROM pg_class c
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = {schema_name})
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND NOT ({schema_name} = {platform_schema_name} AND c.relname = ANY ({platform_tables}::text[]))
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO %I, %I', rel, {reader_name}, {platform_name});
    END LOOP;
    FOREACH creator IN ARRAY {creators}::text[] LOOP
        IF creator = {platform_name} AND {schema_name} = {platform_schema_name} THEN
            CONTINUE;
        END IF;
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                       creator, {schema_name}, {reader_name});
        IF creator <> {platform_name} THEN
            EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                           creator, {schema_name}, {platform_name});
        END IF;
    END LOOP;
END
$grant$;
