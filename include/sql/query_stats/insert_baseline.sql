-- This sample becomes the base of the next delta (every statement, not only the top ones).
INSERT INTO analytics_query_stats_baseline (
    userid, dbid, queryid, toplevel, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read, stats_since
)
SELECT userid, dbid, queryid, toplevel, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read, stats_since
FROM pgss_now
