-- Alerts: definition options and evaluation state on analytics_alerts, the history of every
-- evaluation (analytics_alert_events) and the notification outbox (analytics_alert_notifications).

ALTER TABLE analytics_alerts
    ADD COLUMN recovery_checks        integer          NOT NULL DEFAULT 1 CHECK (recovery_checks >= 1),
    ADD COLUMN check_interval_seconds integer          CHECK (check_interval_seconds IS NULL OR check_interval_seconds > 0),
    ADD COLUMN timeout_seconds        double precision NOT NULL DEFAULT 30 CHECK (timeout_seconds > 0),
    ADD COLUMN dry_run                boolean          NOT NULL DEFAULT false,
    ADD COLUMN subject_template       text,
    ADD COLUMN message_template       text,
    ADD COLUMN log_retention_days     integer          NOT NULL DEFAULT 90 CHECK (log_retention_days > 0),
    ADD COLUMN source                 text             NOT NULL DEFAULT 'table'
        CHECK (source IN ('table', 'yaml', 'catalog')),
    ADD COLUMN source_file            text,
    ADD COLUMN definition_hash        text,
    -- evaluation state
    ADD COLUMN consecutive_met        integer          NOT NULL DEFAULT 0,
    ADD COLUMN consecutive_clear      integer          NOT NULL DEFAULT 0,
    ADD COLUMN state_changed_at       timestamptz,
    ADD COLUMN triggered_since        timestamptz,
    ADD COLUMN incident_notified_at   timestamptz,
    ADD COLUMN last_notified_at       timestamptz,
    ADD COLUMN last_error             text,
    ADD COLUMN last_run_id            text;

-- Canonical conditions; NOT VALID keeps rows written by the old worker readable (evaluation
-- reports an unknown condition of such a row as an error naming it).
ALTER TABLE analytics_alerts
    ADD CONSTRAINT analytics_alerts_condition_check CHECK (
        condition IN ('>', '>=', '<', '<=', '==', '!=', 'is_null', 'is_not_null',
                      'change_pct', 'drop_pct', 'rise_pct')
    ) NOT VALID;

CREATE TABLE analytics_alert_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id      bigint      NOT NULL REFERENCES analytics_alerts (id) ON DELETE CASCADE,
    evaluated_at  timestamptz NOT NULL DEFAULT now(),
    -- 'check' (no transition) or the transition: fired, rearmed, recovered, error, resolved
    kind          text        NOT NULL
        CHECK (kind IN ('check', 'fired', 'rearmed', 'recovered', 'error', 'resolved')),
    state_before  text        NOT NULL,
    state_after   text        NOT NULL,
    value         double precision,
    previous_value double precision,
    condition_met boolean,
    threshold     double precision,
    error         text,
    duration_ms   double precision,
    notified      boolean     NOT NULL DEFAULT false,
    -- why a transition did not notify (muted, dry run, no channels) or other context
    note          text,
    dag_run_id    text
);
CREATE INDEX analytics_alert_events_alert_idx ON analytics_alert_events (alert_id, evaluated_at DESC);
CREATE INDEX analytics_alert_events_time_idx ON analytics_alert_events (evaluated_at);

CREATE TABLE analytics_alert_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint      NOT NULL REFERENCES analytics_alerts (id) ON DELETE CASCADE,
    event_id        bigint      NOT NULL REFERENCES analytics_alert_events (id) ON DELETE CASCADE,
    kind            text        NOT NULL CHECK (kind IN ('fired', 'rearmed', 'recovered', 'error')),
    channel_index   integer     NOT NULL,
    channel_type    text        NOT NULL CHECK (channel_type IN ('slack', 'email', 'webhook')),
    channel         jsonb       NOT NULL,
    payload         jsonb       NOT NULL,
    idempotency_key uuid        NOT NULL DEFAULT gen_random_uuid() CONSTRAINT analytics_alert_notifications_key UNIQUE,
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'dry_run', 'abandoned')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_at      timestamptz,
    claimed_by      text,
    delivered_at    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT analytics_alert_notifications_event_channel_key UNIQUE (event_id, channel_index)
);
CREATE INDEX analytics_alert_notifications_due_idx
    ON analytics_alert_notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX analytics_alert_notifications_sending_idx
    ON analytics_alert_notifications (claimed_at) WHERE status = 'sending';
CREATE INDEX analytics_alert_notifications_alert_idx ON analytics_alert_notifications (alert_id, created_at DESC);
