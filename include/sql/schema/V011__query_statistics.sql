-- Query statistics from pg_stat_statements, stored as deltas between samples.
--   analytics_query_stats_baseline: the counters of every statement at the last sample (the base of
--   the next delta); analytics_query_stats_state: when that sample was taken and the extension's
--   reset / eviction counters then; analytics_query_statistics: the top statements of each window.

CREATE TABLE analytics_query_stats_state (
    id            integer     PRIMARY KEY CHECK (id = 1),
    sampled_at    timestamptz NOT NULL,
    stats_reset   timestamptz,
    dealloc       bigint,
    entries       integer     NOT NULL
);

CREATE TABLE analytics_query_stats_baseline (
    userid           oid              NOT NULL,
    dbid             oid              NOT NULL,
    queryid          bigint           NOT NULL,
    toplevel         boolean          NOT NULL,
    calls            bigint           NOT NULL,
    total_exec_time  double precision NOT NULL,
    rows             bigint           NOT NULL,
    shared_blks_hit  bigint           NOT NULL,
    shared_blks_read bigint           NOT NULL,
    stats_since      timestamptz,
    PRIMARY KEY (userid, dbid, queryid, toplevel)
);

CREATE TABLE analytics_query_statistics (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    window_start        timestamptz      NOT NULL,
    window_end          timestamptz      NOT NULL,
    rank                integer          NOT NULL CHECK (rank >= 1),
    database_name       text,
    role_name           text,
    queryid             bigint           NOT NULL,
    toplevel            boolean          NOT NULL,
    query               text,
    calls               bigint           NOT NULL CHECK (calls >= 0),
    total_exec_time_ms  double precision NOT NULL CHECK (total_exec_time_ms >= 0),
    mean_exec_time_ms   double precision,
    rows                bigint           NOT NULL CHECK (rows >= 0),
    shared_blks_hit     bigint           NOT NULL,
    shared_blks_read    bigint           NOT NULL,
    -- 'delta': counters minus the previous sample (complete for the window);
    -- 'new_entry': first seen in this window (complete); 'entry_reset' / 'stats_reset': the entry or
    -- the whole view was reset (or evicted) inside the window, so activity before the reset is missing.
    basis               text             NOT NULL
        CHECK (basis IN ('delta', 'new_entry', 'entry_reset', 'stats_reset')),
    dag_run_id          text
);
CREATE INDEX analytics_query_statistics_window_idx ON analytics_query_statistics (window_end DESC, rank);
CREATE INDEX analytics_query_statistics_query_idx ON analytics_query_statistics (queryid, window_end DESC);
