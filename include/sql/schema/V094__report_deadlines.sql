-- Report delivery deadlines: a report may have to be delivered within a time after its slot
-- (deadline: '45m', '2h', '1h30m'). A run not delivered by then is recorded (deadline_missed_at)
-- and its report's owner is told once, through the alerts' notification outbox.

ALTER TABLE analytics_reports ADD COLUMN deadline text;
COMMENT ON COLUMN analytics_reports.deadline IS
    'How long after its slot a scheduled run must be delivered: 45m, 2h, 1h30m (minutes when a bare number)';

ALTER TABLE analytics_report_runs
    -- slot + the report's deadline, for scheduled and on-change runs of a report with one
    ADD COLUMN deadline_at        timestamptz,
    -- when the deadline check found it not delivered by its deadline (once)
    ADD COLUMN deadline_missed_at timestamptz;
CREATE INDEX analytics_report_runs_deadline_idx ON analytics_report_runs (deadline_at)
    WHERE deadline_at IS NOT NULL AND deadline_missed_at IS NULL;

-- The outbox also carries notices about report runs ('report_deadline'), to the report's owner:
-- such a row names its run instead of an alert and event; one per run and owner channel.
ALTER TABLE analytics_alert_notifications
    ALTER COLUMN alert_id DROP NOT NULL,
    ALTER COLUMN event_id DROP NOT NULL,
    ADD COLUMN report_run_id bigint REFERENCES analytics_report_runs (id) ON DELETE CASCADE,
    ADD CONSTRAINT analytics_alert_notifications_subject_check
        CHECK ((alert_id IS NOT NULL AND event_id IS NOT NULL) OR report_run_id IS NOT NULL),
    DROP CONSTRAINT analytics_alert_notifications_kind_check,
    ADD CONSTRAINT analytics_alert_notifications_kind_check
        CHECK (kind IN ('fired', 'rearmed', 'recovered', 'error', 'delivery_problem', 'report_deadline'));
CREATE UNIQUE INDEX analytics_alert_notifications_report_run_key
    ON analytics_alert_notifications (report_run_id, channel_index) WHERE report_run_id IS NOT NULL;
