-- Whether pg_stat_statements can be read here: installed in this database (in which schema, which
-- version), available on the server at all, and the server's preload setting.
SELECT (SELECT n.nspname::text
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements') AS schema,
       (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'pg_stat_statements') AS version,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') AS available,
       current_setting('shared_preload_libraries') AS preload,
       current_setting('server_version_num')::integer AS server_version,
       current_database()::text AS database
