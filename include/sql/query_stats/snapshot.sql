-- The counters of every statement now, read once into a temporary table (the view is read only
-- here, so every later step sees the same numbers). {schema} is the extension's schema;
-- {stats_since} is s.stats_since on PostgreSQL 17+ (when the entry was created), else NULL.
CREATE TEMP TABLE pgss_now ON COMMIT DROP AS
SELECT s.userid,
       s.dbid,
       s.queryid,
       s.toplevel,
       s.calls,
       s.total_exec_time,
       s.rows,
       s.shared_blks_hit,
       s.shared_blks_read,
       {stats_since}::timestamptz AS stats_since,
       left(s.query, %(query_text_max_chars)s) AS query
FROM {schema}.pg_stat_statements AS s
WHERE s.queryid IS NOT NULL
  AND (%(all_databases)s OR s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
