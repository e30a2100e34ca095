-- The platform's role: connect, create schemas (dbt), create its tables in {platform_schema}, read
-- statistics of every session and the server's settings (pg_stat_statements and whether it is
-- preloaded, lock holders). The reader: connect, and its sessions are read-only by default (the
-- platform also opens every user query READ ONLY).
GRANT pg_read_all_stats, pg_read_all_settings TO {platform};
GRANT CONNECT, CREATE ON DATABASE {database} TO {platform};
GRANT CONNECT ON DATABASE {database} TO {reader};
GRANT USAGE, CREATE ON SCHEMA {platform_schema} TO {platform};
ALTER ROLE {reader} IN DATABASE {database} SET default_transaction_read_only = on;
