-- Reports posted to Slack channels: a delivery per run and channel (target '#channel'), claimed,
-- sent and recorded like email, so a retried task never posts twice. message_id keeps the Slack
-- file id (an upload) or message ts; location the archived copy's URL when a link was posted.
ALTER TABLE analytics_report_deliveries
    DROP CONSTRAINT analytics_report_deliveries_channel_check,
    ADD CONSTRAINT analytics_report_deliveries_channel_check
        CHECK (channel IN ('email', 'object_storage', 'slack'));

COMMENT ON COLUMN analytics_reports.destinations IS
    'JSON array of object storage targets ("s3://bucket/prefix", "file:///dir" or {"url": ..., "conn_id": ...}) '
    'and Slack channels ("slack:#channel", allowed by REPORTS_ALLOWED_SLACK_CHANNELS)';
