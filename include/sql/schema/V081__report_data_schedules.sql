-- Data-driven reports: what each report reads (found from its SQL or declared), when what it
-- reads last changed, a schedule on change ('on_change') or a cron slot that waits for its data
-- up to a limit; on each run, why it ran and the note of a run that went out without fresh data.

ALTER TABLE analytics_reports
    -- with a cron schedule: a slot is generated once every relation it reads that the platform
    -- builds has changed since the previous slot, or at the data wait limit (with a note)
    ADD COLUMN wait_for_data           boolean     NOT NULL DEFAULT false,
    -- how long after its slot a report waits for its data (NULL: the default in include/reports/definitions.py)
    ADD COLUMN data_wait_limit_seconds integer     CHECK (data_wait_limit_seconds IS NULL OR data_wait_limit_seconds > 0),
    -- the relations the definition declares it reads (schema.table); NULL: found from the SQL
    ADD COLUMN declared_reads          text[],
    -- the relations it reads (schema.table), plain views expanded, as the reader role resolves them
    ADD COLUMN reads                   text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN reads_origin            text        CHECK (reads_origin IN ('declared', 'sql', 'error')),
    ADD COLUMN reads_note              text,
    ADD COLUMN reads_hash              text,
    ADD COLUMN reads_found_at          timestamptz,
    -- when each relation it reads last changed (an asset event the reports DAG ran for):
    -- {"marts.orders": "2026-05-01T04:12:09+00:00", ...}
    ADD COLUMN reads_changed_at        jsonb       NOT NULL DEFAULT '{}'::jsonb;

CREATE INDEX analytics_reports_reads_idx ON analytics_reports USING gin (reads);

ALTER TABLE analytics_report_runs DROP CONSTRAINT analytics_report_runs_trigger_check;
ALTER TABLE analytics_report_runs
    ADD CONSTRAINT analytics_report_runs_trigger_check CHECK (trigger IN ('scheduled', 'adhoc', 'invalid', 'change')),
    -- the asset events that caused the run (on change) or that brought the data it waited for
    ADD COLUMN triggered_by jsonb,
    -- set when the run went out at its data wait limit without fresh data: why (sent with the report)
    ADD COLUMN data_note    text;
