"""
### Reports

Generates the reports defined in `analytics_reports` and delivers them by email, to Slack and to
object storage, the job of the old worker's `reports` queue.

* **validate_request**: checks the trigger's conf / form fields (ad-hoc runs) and names any bad field.
* **plan_runs**: scheduled runs create one run per report whose cron slot fell due since its last
  planned slot (several missed slots give one run, for the latest) and pick up runs still waiting
  for generation or delivery; ad-hoc runs create one run for the request.
  A report with audiences gets one run per audience (its own parameter values, recipients and
  destinations), each generated and delivered on its own.
* **report.generate** (one per run, `reports` pool): streams the query read-only with a statement
  timeout into CSV (`COPY`), gzipped CSV or XLSX and archives the file.
* **report.deliver**: email with the file attached (a link when it is too large; a chart shown
  inline), posts to allowed Slack channels and copies to object storage; each delivery is claimed
  by the task's delivery worker and recorded by it after the send (retried until the warehouse
  answers), so a retry never sends it twice (docs/delivery.md).
* **check_deadlines**: a run of a report with a `deadline` not delivered by then (slot + deadline)
  is recorded in `analytics_report_runs.deadline_missed_at` and its owner told once through the
  alerts' notification outbox (sent by the `alerts` DAG).
* **cleanup_expired_files**: deletes files past their report's retention.

Ad-hoc: `airflow dags trigger reports --conf '{"report_id": 7}'` (or `"report_name"`), or an inline
query: `--conf '{"sql": "SELECT ...", "format": "xlsx", "recipients": ["a@example.com"]}'`, and
`"slack_channels": ["slack:#reports"]` for channels of `REPORTS_ALLOWED_SLACK_CHANNELS`;
the UI's trigger form shows the same fields.

Reports have their own cron schedules and time zones; the DAG's schedule is how often they are
looked at. **Data-aware**: the DAG also runs within seconds of an asset event through the aliases
`dbt_models` and `materialized_views`. A report with `schedule = 'on_change'` is generated once
per such run that changed a relation it reads (found from its SQL, or declared: `declared_reads`);
a cron report with `wait_for_data` waits, after its slot, until what it reads changed since the
previous slot, and at its `data_wait_limit_seconds` goes out anyway with a note in the email and
in `analytics_report_runs.data_note`. The events that caused a run are in its `triggered_by`.
Every copy to object storage is an asset event through `report_files`.

**When it fails**: an invalid trigger fails *validate_request* with a message naming the field (a
destination outside `REPORTS_ALLOWED_DESTINATIONS`, or a Slack channel outside
`REPORTS_ALLOWED_SLACK_CHANNELS`, names the allowed ones; more recipients than the maximum are
refused). A report whose SQL fails, is refused (it must be one read-only query, run on the reader
connection `warehouse_reader`), lacks a privilege or times out fails its *report.generate* task
without retries; the error is kept in `analytics_report_runs.error`. A missing or privileged
reader connection fails the task at once, naming it (see docs/security.md). A failed delivery
(email, Slack, object storage) stays in `analytics_report_deliveries` (status `failed`, with the
error) and is retried by the task's retries and by the next runs; one that failed for good, or
whose worker died between the send and the record (an email or a Slack post: `unknown`, never
sent twice), fails *report.deliver* without retries and is named in the run's error and told to
the report's owner. A broken report never stops the others.
"""

from __future__ import annotations

from airflow.sdk import AssetAlias, Param, task, task_group

from include.categories import platform_dag
from include.lineage.assets import RELATION_ALIASES, REPORT_FILES, clock_or_changes
from include.reports.definitions import FORMATS
from include.reports.destinations import channel_choices

#: The trigger form offers the allowed Slack channels; the validation checks them again at run time.
SLACK_CHOICES = channel_choices()
PARAMS = {
    "report_id": Param(
        None,
        type=["null", "integer"],
        minimum=1,
        title="Report id",
        description="Generate and deliver this report of analytics_reports now. Leave empty for a scheduled run.",
    ),
    "report_name": Param(
        None,
        type=["null", "string"],
        title="Report name",
        description="The same, naming the report instead of giving its id.",
    ),
    "sql": Param(
        None,
        type=["null", "string"],
        format="multiline",
        title="Ad-hoc SQL",
        description="One SELECT statement, run read-only. Named parameters as %(name)s. Not with a report id/name.",
    ),
    "parameters": Param(
        None,
        type=["null", "object"],
        title="SQL parameters",
        description='Values of the %(name)s placeholders, e.g. {"since": "2026-01-01"}.',
    ),
    "format": Param(
        None,
        type=["null", "string"],
        enum=[None, *FORMATS],
        title="Format",
        description="File format (ad-hoc SQL: default csv; a stored report: overrides its format). "
        "png is the chart; pdf the chart and the first rows as a table: both need a chart spec.",
    ),
    "chart": Param(
        None,
        type=["null", "object"],
        title="Chart (png, pdf)",
        description='The chart to draw, e.g. {"kind": "line", "x": "day", "y": "amount", "series": "region", '
        '"top_n": 5}. Kinds: line, bar, area, scatter, table. A stored report: replaces its chart.',
    ),
    "recipients": Param(
        None,
        type=["null", "array"],
        items={"type": "string"},
        title="Recipients",
        description="Email addresses to send the file to (a stored report: replaces its recipients).",
    ),
    "destination": Param(
        None,
        type=["null", "string"],
        title="Object storage destination",
        description="Copy the file to an allowed destination: its name (exports, exports/q3) or a URL under it "
        "(the operator's REPORTS_ALLOWED_DESTINATIONS; anything else is refused, naming the choices).",
    ),
    "slack_channels": Param(
        None,
        type=["null", "array"],
        items={"type": "string"},
        # the operator's allowed channels (REPORTS_ALLOWED_SLACK_CHANNELS): a multi-select in the form
        **({"examples": SLACK_CHOICES} if SLACK_CHOICES else {}),
        title="Slack channels",
        description="Post the report to these allowed Slack channels (slack:#channel; the operator's "
        "REPORTS_ALLOWED_SLACK_CHANNELS; a stored report: replaces its Slack channels). A chart or a file "
        "is uploaded on an API-token connection; an incoming webhook gets a link to the archived file.",
    ),
    "name": Param(
        None,
        type=["null", "string"],
        title="Name of an ad-hoc report",
        description="Used in the file name and email subject of an ad-hoc SQL report (default adhoc).",
    ),
    "audience": Param(
        None,
        type=["null", "string"],
        title="Audience",
        description="A stored report with audiences: generate only this audience's file (with recipients or a "
        "destination: send it there instead). Empty: every audience gets its own file.",
    ),
}


def _worker(ti) -> str:
    """Who holds a claim: this task instance."""
    return f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"


with platform_dag(
    dag_id="reports",
    category="reports",
    schedule=clock_or_changes("*/15 * * * *", RELATION_ALIASES),
    doc_md=__doc__,
    tags=["ad-hoc"],
    params=PARAMS,
    # Ad-hoc triggers need not wait for a scheduled run; the pool caps the work, and
    # unique keys and claims keep overlapping runs from doing anything twice.
    max_active_runs=4,
):

    @task
    def validate_request(params: dict) -> dict:
        """Validate the trigger's fields; fail (without retries) naming the first bad one."""
        from include.reports.tasks import validate_request as validate

        return validate(params)

    @task
    def plan_runs(params: dict, run_id=None, triggering_asset_events=None) -> list[int]:
        """Create this DAG run's report runs; return every run with work left."""
        from include.reports.tasks import plan

        return plan(params, dag_run_id=run_id, triggering_asset_events=triggering_asset_events)

    @task
    def generate(report_run: int, ti=None) -> dict:
        """Generate the report file of one run (once, whatever the retries)."""
        from include.reports.generation import generate_run

        return generate_run(report_run, worker=_worker(ti))

    @task(outlets=[AssetAlias(REPORT_FILES)])
    def deliver(report_run: int, ti=None, outlet_events=None) -> dict:
        """Send one run's file to its recipients and destinations that did not get it yet."""
        from include.reports.run_delivery import deliver_run

        return deliver_run(report_run, worker=_worker(ti), outlet_events=outlet_events)

    @task_group(group_id="report")
    def report(report_run: int) -> None:
        generate(report_run) >> deliver(report_run)

    @task
    def check_deadlines() -> dict:
        """Record report runs not delivered by their deadline (once) and tell their owners."""
        from include.reports.deadlines import check_deadlines as check

        return check()

    @task
    def cleanup_expired_files() -> dict:
        """Delete report files past their retention (archive and object storage copies)."""
        from include.reports.retention import cleanup_expired

        return cleanup_expired()

    validated = validate_request()
    planned = plan_runs()
    validated >> planned
    validated >> cleanup_expired_files()
    # Beside the reports, not after them: a slow or failing report never delays the check of the others.
    planned >> check_deadlines()
    report.expand(report_run=planned)
