-- The platform's tables (those the migrations create) belong to the platform's role, and the
-- reader has no privilege on any of them.
DO $tables$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {platform_schema_name}
          AND c.relname = ANY ({platform_tables}::text[])
          AND c.relkind IN ('r', 'p')
    LOOP
        IF (SELECT relowner FROM pg_class WHERE oid = rel) <> (SELECT oid FROM pg_roles WHERE rolname = {platform_name}) THEN
            EXECUTE format('ALTER TABLE %s OWNER TO %I', rel, {platform_name});
        END IF;
        EXECUTE format('REVOKE ALL ON TABLE %s FROM %I', rel, {reader_name});
    END LOOP;
END
$tables$;
