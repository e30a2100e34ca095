-- A send's outcome is never guessed (plugins/delivery/recording.py).
--
-- Delivery workers: the processes sending alert notifications and report deliveries. Each beats
-- its row while it lives; the rows it claims carry its worker_id. Only a row whose worker is gone
-- becomes "outcome unknown".
CREATE TABLE analytics_delivery_workers (
    worker_id           text        PRIMARY KEY,
    hostname            text        NOT NULL,
    pid                 integer     NOT NULL,
    -- dag/run/task/map index/try of the Airflow task the worker runs in, if any
    task                text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    heartbeat_at        timestamptz NOT NULL DEFAULT now(),
    -- without a heartbeat for this long, the worker is gone
    stale_after_seconds double precision NOT NULL CHECK (stale_after_seconds > 0),
    -- the worker stops trying to record outcomes at this time (its task's own time runs out)
    deadline_at         timestamptz NOT NULL
);

-- Whether each worker is alive, and if not why. The heartbeat's age counts from the warehouse's own
-- start: after a restart, live workers have stale_after_seconds to reconnect before they look gone.
-- A row claimed by a worker that is not in this view at all (retired, or older than this table)
-- is gone too.
CREATE VIEW analytics_delivery_worker_status AS
SELECT worker_id,
       deadline_at > now()
           AND now() - greatest(heartbeat_at, pg_postmaster_start_time())
               < make_interval(secs => stale_after_seconds) AS alive,
       CASE
           WHEN deadline_at <= now() THEN
               'its deadline passed at ' || to_char(deadline_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
           ELSE
               'no heartbeat since ' || to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
       END AS gone_reason
FROM analytics_delivery_workers;

-- Alert notifications: 'unknown' (the worker that sent died before recording the outcome; replaces
-- 'abandoned'), and 'delivery_problem' notices telling an alert's owner, once per notification,
-- that a notification failed for good or has an unknown outcome.
UPDATE analytics_alert_notifications SET status = 'unknown' WHERE status = 'abandoned';
ALTER TABLE analytics_alert_notifications
    DROP CONSTRAINT analytics_alert_notifications_status_check,
    ADD CONSTRAINT analytics_alert_notifications_status_check
        CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'dry_run', 'unknown')),
    DROP CONSTRAINT analytics_alert_notifications_kind_check,
    ADD CONSTRAINT analytics_alert_notifications_kind_check
        CHECK (kind IN ('fired', 'rearmed', 'recovered', 'error', 'delivery_problem')),
    ADD COLUMN about_notification_id bigint REFERENCES analytics_alert_notifications (id) ON DELETE CASCADE,
    DROP CONSTRAINT analytics_alert_notifications_event_channel_key;
-- One notification per event and channel; one problem notice per notification and owner channel.
CREATE UNIQUE INDEX analytics_alert_notifications_event_channel_key
    ON analytics_alert_notifications (event_id, channel_index) WHERE about_notification_id IS NULL;
CREATE UNIQUE INDEX analytics_alert_notifications_problem_key
    ON analytics_alert_notifications (about_notification_id, channel_index) WHERE about_notification_id IS NOT NULL;

-- Report deliveries: 'unknown' likewise (an email whose worker died between the send and the record).
ALTER TABLE analytics_report_deliveries
    DROP CONSTRAINT analytics_report_deliveries_status_check,
    ADD CONSTRAINT analytics_report_deliveries_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown'));
