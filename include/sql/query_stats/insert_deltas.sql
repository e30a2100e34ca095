-- The top statements of the window (previous sample, this sample], as deltas against the baseline:
--   delta:       counters minus the baseline (complete for the window);
--   new_entry:   not in the baseline, so created inside the window: its counters are the delta;
--   entry_reset: a counter went down or (PostgreSQL 17+) stats_since moved: the entry was reset or
--                evicted and created again inside the window; the counters since then are kept;
--   stats_reset: the whole view was reset inside the window: the counters since the reset are kept.
-- So a reset never produces a negative or inflated delta; it only loses what ran before it.
WITH classified AS (
    SELECT n.*,
           b.calls AS base_calls,
           b.total_exec_time AS base_exec_time,
           b.rows AS base_rows,
           b.shared_blks_hit AS base_blks_hit,
           b.shared_blks_read AS base_blks_read,
           CASE
               WHEN %(stats_reset)s THEN 'stats_reset'
               WHEN b.queryid IS NULL THEN 'new_entry'
               WHEN n.calls < b.calls
                    OR n.total_exec_time < b.total_exec_time
                    OR n.rows < b.rows
                    OR n.shared_blks_hit < b.shared_blks_hit
                    OR n.shared_blks_read < b.shared_blks_read
                    OR n.stats_since IS DISTINCT FROM b.stats_since
                   THEN 'entry_reset'
               ELSE 'delta'
           END AS basis
    FROM pgss_now AS n
    LEFT JOIN analytics_query_stats_baseline AS b
        ON b.userid = n.userid AND b.dbid = n.dbid AND b.queryid = n.queryid AND b.toplevel = n.toplevel
),
deltas AS (
    SELECT c.userid, c.dbid, c.queryid, c.toplevel, c.query, c.basis,
           CASE WHEN c.basis = 'delta' THEN c.calls - c.base_calls ELSE c.calls END AS calls,
           CASE WHEN c.basis = 'delta' THEN c.total_exec_time - c.base_exec_time ELSE c.total_exec_time END
               AS total_exec_time,
           CASE WHEN c.basis = 'delta' THEN c.rows - c.base_rows ELSE c.rows END AS rows,
           CASE WHEN c.basis = 'delta' THEN c.shared_blks_hit - c.base_blks_hit ELSE c.shared_blks_hit END
               AS shared_blks_hit,
           CASE WHEN c.basis = 'delta' THEN c.shared_blks_read - c.base_blks_read ELSE c.shared_blks_read END
               AS shared_blks_read
    FROM classified AS c
),
top AS (
    SELECT d.*, row_number() OVER (ORDER BY d.total_exec_time DESC, d.calls DESC, d.queryid) AS rank
    FROM deltas AS d
    WHERE d.calls > 0
    ORDER BY d.total_exec_time DESC, d.calls DESC, d.queryid
    LIMIT %(top_n)s
)
INSERT INTO analytics_query_statistics (
    window_start, window_end, rank, database_name, role_name, queryid, toplevel, query, calls,
    total_exec_time_ms, mean_exec_time_ms, rows, shared_blks_hit, shared_blks_read, basis, dag_run_id
)
SELECT %(window_start)s, %(window_end)s, t.rank, db.datname, r.rolname, t.queryid, t.toplevel, t.query,
       t.calls, t.total_exec_time, t.total_exec_time / t.calls, t.rows, t.shared_blks_hit,
       t.shared_blks_read, t.basis, %(dag_run_id)s
FROM top AS t
LEFT JOIN pg_database AS db ON db.oid = t.dbid
LEFT JOIN pg_roles AS r ON r.oid = t.userid
ORDER BY t.rank
RETURNING basis
