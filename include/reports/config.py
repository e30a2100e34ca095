"""Run-time settings of the reports feature (environment variables, read inside tasks only)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Open runs older than this are not picked up again by later DAG runs (nor checked for a missed deadline).
OPEN_RUN_MAX_AGE_DAYS = 7


@dataclass(frozen=True)
class ReportSettings:
    """Where files go and the defaults a report definition may override."""

    #: Archive every generated file here (object storage URL: ``s3://bucket/prefix``, ``file:///dir``).
    storage_url: str
    #: Airflow connection of the archive (``None``: the provider's default credentials).
    storage_conn_id: str | None
    #: Local directory where files are written before they are published.
    staging_dir: Path
    #: Larger files are not attached: the email carries a link to the archived file.
    max_attachment_bytes: int
    #: Lifetime of a signed link (SigV4 allows at most 7 days).
    link_expiry_seconds: int
    #: The time limits (include/reports/limits.py): the query, writing the file, the whole generation.
    statement_timeout_seconds: int
    file_timeout_seconds: int
    run_timeout_seconds: int
    #: Connection used to send report emails.
    smtp_conn_id: str
    #: Slack connection of Slack destinations whose allowed channel names none (API token or webhook).
    slack_conn_id: str
    #: Default connection for object storage destinations that name none.
    destination_conn_id: str | None
    #: How long a run being generated stays claimed if its task dies without reporting back (deliveries: a
    #: delivery worker, plugins/delivery/recording.py).
    claim_lease_seconds: int
    #: How many times a run is generated, and a delivery sent, before it is given up.
    max_attempts: int

    @classmethod
    def from_env(cls) -> ReportSettings:
        from include.settings import REPORTS_SLACK_CONN_ID, SMTP_CONN_ID, env_number

        home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
        return cls(
            storage_url=os.environ.get("REPORTS_STORAGE_URL") or (home / "reports").resolve().as_uri(),
            storage_conn_id=os.environ.get("REPORTS_STORAGE_CONN_ID") or None,
            staging_dir=Path(os.environ.get("REPORTS_STAGING_DIR") or Path(tempfile.gettempdir()) / "platform-reports"),
            max_attachment_bytes=env_number("REPORTS_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024, int),
            link_expiry_seconds=env_number("REPORTS_LINK_EXPIRY_SECONDS", 7 * 24 * 3600, int),
            statement_timeout_seconds=env_number("REPORTS_STATEMENT_TIMEOUT_SECONDS", 300, int),
            file_timeout_seconds=env_number("REPORTS_FILE_TIMEOUT_SECONDS", 900, int),
            run_timeout_seconds=_run_timeout(),
            smtp_conn_id=os.environ.get("REPORTS_SMTP_CONN_ID") or SMTP_CONN_ID,
            slack_conn_id=os.environ.get("REPORTS_SLACK_CONN_ID") or REPORTS_SLACK_CONN_ID,
            destination_conn_id=os.environ.get("REPORTS_DESTINATION_CONN_ID") or None,
            claim_lease_seconds=env_number("REPORTS_CLAIM_LEASE_SECONDS", 3600, int),
            max_attempts=env_number("REPORTS_MAX_ATTEMPTS", 5, int),
        )


def _run_timeout() -> int:
    from include.reports.errors import InvalidReportError
    from include.reports.limits import check_run_timeout
    from include.settings import env_number

    seconds = env_number("REPORTS_RUN_TIMEOUT_SECONDS", 1800, int)
    try:
        return check_run_timeout(seconds, field="REPORTS_RUN_TIMEOUT_SECONDS")
    except InvalidReportError as error:
        raise ValueError(f"setting {error}") from None
