-- Platform tables taken over from the Celery worker (same names), plus health checks.
-- Later features extend these tables with their own migrations.

CREATE TABLE analytics_catalog (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name      text        NOT NULL,
    object_name      text        NOT NULL,
    object_type      text        NOT NULL
        CHECK (object_type IN ('table', 'view', 'materialized_view', 'partitioned_table', 'foreign_table')),
    columns          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    primary_key      text[]      NOT NULL DEFAULT '{}',
    comment          text,
    size_bytes       bigint,
    row_count        bigint,
    row_count_method text
        CHECK (row_count_method IN ('estimate', 'exact', 'unknown')),
    last_analyzed_at timestamptz,
    last_vacuumed_at timestamptz,
    definition_hash  text,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    changed_at       timestamptz NOT NULL DEFAULT now(),
    refreshed_at     timestamptz NOT NULL DEFAULT now(),
    dropped_at       timestamptz,
    CONSTRAINT analytics_catalog_object_key UNIQUE (schema_name, object_name)
);
CREATE INDEX analytics_catalog_live_idx ON analytics_catalog (schema_name, object_type) WHERE dropped_at IS NULL;

CREATE TABLE analytics_alerts (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text        NOT NULL CONSTRAINT analytics_alerts_name_key UNIQUE,
    description        text,
    sql                text        NOT NULL,
    condition          text        NOT NULL,
    threshold          double precision,
    severity           text        NOT NULL DEFAULT 'warning'
        CHECK (severity IN ('info', 'warning', 'critical')),
    channels           jsonb       NOT NULL DEFAULT '[]'::jsonb,
    rearm_seconds      integer     CHECK (rearm_seconds IS NULL OR rearm_seconds > 0),
    consecutive_checks integer     NOT NULL DEFAULT 1 CHECK (consecutive_checks >= 1),
    muted_until        timestamptz,
    owner              text,
    enabled            boolean     NOT NULL DEFAULT true,
    state              text        NOT NULL DEFAULT 'unknown'
        CHECK (state IN ('unknown', 'ok', 'triggered', 'error')),
    last_value         double precision,
    last_evaluated_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analytics_alerts_enabled_idx ON analytics_alerts (id) WHERE enabled;

CREATE TABLE analytics_reports (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text        NOT NULL CONSTRAINT analytics_reports_name_key UNIQUE,
    description     text,
    sql             text        NOT NULL,
    parameters      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    format          text        NOT NULL DEFAULT 'csv' CHECK (format IN ('csv', 'csv.gz', 'xlsx')),
    schedule        text,
    timezone        text        NOT NULL DEFAULT 'UTC',
    recipients      text[]      NOT NULL DEFAULT '{}',
    destinations    jsonb       NOT NULL DEFAULT '[]'::jsonb,
    retention_days  integer     NOT NULL DEFAULT 30 CHECK (retention_days > 0),
    owner           text,
    enabled         boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX analytics_reports_scheduled_idx ON analytics_reports (id) WHERE enabled AND schedule IS NOT NULL;

CREATE TABLE analytics_refresh_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job          text        NOT NULL,
    target       text,
    status       text        NOT NULL CHECK (status IN ('running', 'success', 'failed', 'skipped')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    duration_ms  bigint,
    details      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error        text,
    dag_run_id   text
);
CREATE INDEX analytics_refresh_log_job_idx ON analytics_refresh_log (job, started_at DESC);
CREATE INDEX analytics_refresh_log_started_idx ON analytics_refresh_log (started_at);

CREATE TABLE worker_metrics (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hostname           text        NOT NULL,
    collected_at       timestamptz NOT NULL DEFAULT now(),
    cpu_percent        double precision,
    cpu_count          integer,
    memory_percent     double precision,
    memory_used_bytes  bigint,
    memory_total_bytes bigint,
    disk_percent       double precision,
    disk_used_bytes    bigint,
    disk_total_bytes   bigint,
    load_1m            double precision,
    load_5m            double precision,
    load_15m           double precision,
    details            jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX worker_metrics_host_time_idx ON worker_metrics (hostname, collected_at DESC);
CREATE INDEX worker_metrics_collected_idx ON worker_metrics (collected_at);

CREATE TABLE task_statistics (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id          text        NOT NULL,
    task_id         text        NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    runs            integer     NOT NULL CHECK (runs >= 0),
    successes       integer     NOT NULL CHECK (successes >= 0),
    failures        integer     NOT NULL CHECK (failures >= 0),
    success_rate    double precision,
    p50_duration_s  double precision,
    p95_duration_s  double precision,
    retries         integer     NOT NULL DEFAULT 0,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_statistics_window_key UNIQUE (dag_id, task_id, window_end)
);
CREATE INDEX task_statistics_computed_idx ON task_statistics (computed_at);

CREATE TABLE health_checks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_name  text        NOT NULL,
    target      text        NOT NULL,
    status      text        NOT NULL CHECK (status IN ('ok', 'failed')),
    latency_ms  double precision,
    detail      text,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    dag_run_id  text
);
CREATE INDEX health_checks_name_time_idx ON health_checks (check_name, checked_at DESC);
CREATE INDEX health_checks_checked_idx ON health_checks (checked_at);
