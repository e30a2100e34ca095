-- Data-aware alerts: what each alert reads (found from its SQL or declared), when it is evaluated
-- (on the clock, after a change of what it reads, or both), and why each evaluation ran.

ALTER TABLE analytics_alerts
    -- clock: on the alerts DAG's schedule (and check_interval); on_change: after an asset event of
    -- a relation it reads; clock_and_change: both
    ADD COLUMN schedule       text        NOT NULL DEFAULT 'clock_and_change'
        CHECK (schedule IN ('clock', 'on_change', 'clock_and_change')),
    -- the relations the definition declares it reads (schema.table); NULL: found from the SQL
    ADD COLUMN declared_reads text[],
    -- the relations it reads (schema.table), plain views expanded, as the reader role resolves them
    ADD COLUMN reads          text[]      NOT NULL DEFAULT '{}',
    -- declared | sql | error (the SQL could not be parsed); NULL: not worked out yet
    ADD COLUMN reads_origin   text        CHECK (reads_origin IN ('declared', 'sql', 'error')),
    -- names the reader role does not find (yet), or why the SQL could not be read
    ADD COLUMN reads_note     text,
    -- md5 of the SQL and declared relations the reads were worked out from
    ADD COLUMN reads_hash     text,
    ADD COLUMN reads_found_at timestamptz;

CREATE INDEX analytics_alerts_reads_idx ON analytics_alerts USING gin (reads);

ALTER TABLE analytics_alert_events
    -- clock (a scheduled run), change (asset events of what it reads), manual (a triggered run)
    ADD COLUMN trigger      text  CHECK (trigger IN ('clock', 'change', 'manual')),
    -- the asset events that caused a 'change' evaluation: relation, asset URI, time, source task and run
    ADD COLUMN triggered_by jsonb;
