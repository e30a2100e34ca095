-- Reports: per-report generation settings, a run history (one row per report and schedule slot,
-- or per ad-hoc trigger) and its deliveries (one row per channel and target of a run).

ALTER TABLE analytics_reports
    ADD COLUMN statement_timeout_seconds integer
        CHECK (statement_timeout_seconds IS NULL OR statement_timeout_seconds > 0),
    ADD COLUMN max_attachment_bytes bigint
        CHECK (max_attachment_bytes IS NULL OR max_attachment_bytes >= 0),
    ADD COLUMN email_subject text;

COMMENT ON COLUMN analytics_reports.parameters IS
    'JSON object of bound parameters, referenced in sql as %(name)s; %(slot)s is the schedule slot';
COMMENT ON COLUMN analytics_reports.destinations IS
    'JSON array of object storage targets: "s3://bucket/prefix", "file:///dir" or {"url": ..., "conn_id": ...}';

CREATE TABLE analytics_report_runs (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id           bigint REFERENCES analytics_reports (id) ON DELETE SET NULL,
    report_name         text        NOT NULL,
    trigger             text        NOT NULL CHECK (trigger IN ('scheduled', 'adhoc', 'invalid')),
    slot                timestamptz NOT NULL,
    -- scheduled:<report id>:<slot>, adhoc:<dag run id>, invalid:<report id>:<definition version>
    run_key             text        NOT NULL CONSTRAINT analytics_report_runs_run_key UNIQUE,
    dag_run_id          text,
    -- the definition as it was when the run was planned
    sql                 text        NOT NULL,
    parameters          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    format              text        NOT NULL CHECK (format IN ('csv', 'csv.gz', 'xlsx')),
    recipients          text[]      NOT NULL DEFAULT '{}',
    destinations        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    retention_days      integer     NOT NULL CHECK (retention_days > 0),
    statement_timeout_seconds integer NOT NULL CHECK (statement_timeout_seconds > 0),
    max_attachment_bytes bigint     NOT NULL CHECK (max_attachment_bytes >= 0),
    email_subject       text,
    status              text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'generated', 'delivered', 'failed', 'superseded')),
    attempts            integer     NOT NULL DEFAULT 0,
    claimed_by          text,
    claim_expires_at    timestamptz,
    rows                bigint,
    bytes               bigint,
    duration_ms         bigint,
    file_name           text,
    location            text,
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    generated_at        timestamptz,
    finished_at         timestamptz,
    cleaned_at          timestamptz
);
-- Exactly one scheduled run per report and slot.
CREATE UNIQUE INDEX analytics_report_runs_slot_key
    ON analytics_report_runs (report_id, slot) WHERE trigger = 'scheduled';
CREATE INDEX analytics_report_runs_open_idx
    ON analytics_report_runs (created_at) WHERE status IN ('pending', 'running', 'generated', 'failed');
CREATE INDEX analytics_report_runs_report_idx ON analytics_report_runs (report_id, slot DESC);
CREATE INDEX analytics_report_runs_cleanup_idx ON analytics_report_runs (created_at)
    WHERE cleaned_at IS NULL AND location IS NOT NULL;

CREATE TABLE analytics_report_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           bigint      NOT NULL REFERENCES analytics_report_runs (id) ON DELETE CASCADE,
    channel          text        NOT NULL CHECK (channel IN ('email', 'object_storage')),
    -- the recipients (comma separated) or the destination URL
    target           text        NOT NULL,
    conn_id          text,
    status           text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    claimed_by       text,
    claim_expires_at timestamptz,
    -- object storage: where the copy was written; email: the link sent instead of an attachment
    location         text,
    message_id       text,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    -- Exactly one delivery per run, channel and target.
    CONSTRAINT analytics_report_deliveries_target_key UNIQUE (run_id, channel, target)
);
CREATE INDEX analytics_report_deliveries_open_idx
    ON analytics_report_deliveries (run_id) WHERE status <> 'sent';
