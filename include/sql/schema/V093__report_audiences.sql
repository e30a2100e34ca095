-- Report audiences: one scheduled run (slot) of a report generates one file per audience, each
-- with the audience's own parameter values and delivered to the audience's own recipients and
-- destinations. A run row is one report, slot and audience.

ALTER TABLE analytics_reports ADD COLUMN audiences jsonb
    CHECK (audiences IS NULL OR jsonb_typeof(audiences) = 'array');
COMMENT ON COLUMN analytics_reports.audiences IS
    'JSON array of audiences: [{"name": "emea", "recipients": [...], "destinations": [...], "params": {"region": "EU"}}]';

-- NULL: the report has no audiences (its own recipients and destinations).
ALTER TABLE analytics_report_runs ADD COLUMN audience text;

-- Exactly one scheduled run per report, slot and audience.
DROP INDEX IF EXISTS analytics_report_runs_slot_key;
CREATE UNIQUE INDEX analytics_report_runs_slot_key
    ON analytics_report_runs (report_id, slot, coalesce(audience, '')) WHERE trigger = 'scheduled';
