-- Chart reports: a declarative chart spec on a report (and on each run, as it was when planned),
-- and the formats drawn from it (png: the chart; pdf: the chart and the first rows as a table).

ALTER TABLE analytics_reports ADD COLUMN chart jsonb
    CHECK (chart IS NULL OR jsonb_typeof(chart) = 'object');
COMMENT ON COLUMN analytics_reports.chart IS
    'Chart spec for the png and pdf formats: {"kind", "x", "y", "series", "aggregate", "top_n", "title", ...}';

ALTER TABLE analytics_reports DROP CONSTRAINT analytics_reports_format_check;
ALTER TABLE analytics_reports ADD CONSTRAINT analytics_reports_format_check
    CHECK (format IN ('csv', 'csv.gz', 'xlsx', 'png', 'pdf'));

ALTER TABLE analytics_report_runs ADD COLUMN chart jsonb;
ALTER TABLE analytics_report_runs DROP CONSTRAINT analytics_report_runs_format_check;
ALTER TABLE analytics_report_runs ADD CONSTRAINT analytics_report_runs_format_check
    CHECK (format IN ('csv', 'csv.gz', 'xlsx', 'png', 'pdf'));
