-- Report time limits that each bound what their name says: statement_timeout_seconds the query,
-- file_timeout_seconds writing the file, run_timeout_seconds the whole generation (query, file,
-- publishing). NULL on a report: the REPORTS_*_TIMEOUT_SECONDS setting; a run keeps the values it was planned with.

ALTER TABLE analytics_reports
    ADD COLUMN file_timeout_seconds integer CHECK (file_timeout_seconds IS NULL OR file_timeout_seconds > 0),
    ADD COLUMN run_timeout_seconds integer CHECK (run_timeout_seconds IS NULL OR run_timeout_seconds > 0);

-- Runs planned before this migration get the settings' defaults of the time.
ALTER TABLE analytics_report_runs
    ADD COLUMN file_timeout_seconds integer NOT NULL DEFAULT 900 CHECK (file_timeout_seconds > 0),
    ADD COLUMN run_timeout_seconds integer NOT NULL DEFAULT 1800 CHECK (run_timeout_seconds > 0);
ALTER TABLE analytics_report_runs
    ALTER COLUMN file_timeout_seconds DROP DEFAULT,
    ALTER COLUMN run_timeout_seconds DROP DEFAULT;
