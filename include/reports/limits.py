"""The three time limits of a report run, each bounding what its name says.

* **query** (``statement_timeout_seconds``): the database running the report's SQL and sending its
  rows. The server enforces it (``statement_timeout``). A file that is slow to write never holds the
  statement open: XLSX rows and csv.gz text are first spooled to local disk at the speed of the
  connection, and the file is written from the spool after the statement has ended.
* **file** (``file_timeout_seconds``): writing the file from the spooled rows (XLSX cells, gzip,
  drawing a chart), checked as the file is written.
* **run** (``run_timeout_seconds``): the whole generation, query, file and publishing to the archive.

Each limit that is exceeded fails the run (no retry: the same report would exceed it again) with a
:class:`TimeLimitExceeded` that names the limit, its setting and what to do about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from include.reports.errors import InvalidReportError, ReportGenerationError

#: Seconds the server's statement timeout may not go below (PostgreSQL counts milliseconds).
MIN_STATEMENT_SECONDS = 1.0


class TimeLimitExceeded(ReportGenerationError):
    """A time limit of the run was exceeded; ``limit`` is ``query``, ``file`` or ``run``."""

    reason = "time_limit"

    def __init__(self, limit: str, setting: str, seconds: float, detail: str, advice: str) -> None:
        self.limit, self.setting, self.seconds = limit, setting, seconds
        super().__init__(f"the {limit} time limit was exceeded: {detail} (limit {seconds:g} s, {setting}); {advice}")


@dataclass(frozen=True)
class TimeLimits:
    """Seconds allowed for the query, for writing the file, and for the whole run."""

    query_seconds: float
    file_seconds: float
    run_seconds: float


def time_limits(run: Mapping[str, Any]) -> TimeLimits:
    """The limits a run was planned with (an ``analytics_report_runs`` row)."""
    return TimeLimits(run["statement_timeout_seconds"], run["file_timeout_seconds"], run["run_timeout_seconds"])


@dataclass
class RunClock:
    """Measures one generation against its :class:`TimeLimits`."""

    limits: TimeLimits
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    file_started: float | None = field(init=False, default=None)
    #: Whether the last statement timeout given out was the run's remaining time (not the query limit).
    statement_bound_by_run: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def run_remaining(self) -> float:
        return self.limits.run_seconds - (self.clock() - self.started)

    def statement_timeout(self) -> float:
        """The server's statement timeout for the query: the query limit, or less if the run has less left."""
        self.check_run("before the query started")
        remaining = self.run_remaining()
        self.statement_bound_by_run = remaining < self.limits.query_seconds
        return max(MIN_STATEMENT_SECONDS, min(self.limits.query_seconds, remaining))

    def query_timed_out(self, error: BaseException) -> TimeLimitExceeded | None:
        """The limit a ``canceling statement due to statement timeout`` error stands for (else ``None``)."""
        import psycopg

        if not isinstance(error, psycopg.errors.QueryCanceled) or "statement timeout" not in str(error):
            return None
        if self.statement_bound_by_run:
            return self._run_exceeded("the query was still running when the run's time was up")
        return TimeLimitExceeded(
            "query",
            "statement_timeout_seconds",
            self.limits.query_seconds,
            "the report's SQL ran longer than its statement timeout",
            "make the query faster (filter, aggregate, index) or raise the report's statement_timeout_seconds",
        )

    def start_file(self) -> None:
        """The query has ended; from now on the file limit counts."""
        self.file_started = self.clock()

    def check_file(self, progress: str) -> None:
        """Raise if writing the file (``progress`` says how far it got) or the run has taken too long."""
        if self.file_started is not None and self.clock() - self.file_started > self.limits.file_seconds:
            raise TimeLimitExceeded(
                "file",
                "file_timeout_seconds",
                self.limits.file_seconds,
                f"writing the file took longer than allowed after {progress}",
                "use csv.gz for reports this large, or raise the report's file_timeout_seconds",
            )
        self.check_run(progress)

    def check_run(self, progress: str) -> None:
        if self.run_remaining() <= 0:
            raise self._run_exceeded(f"the run took longer than allowed ({progress})")

    def _run_exceeded(self, detail: str) -> TimeLimitExceeded:
        return TimeLimitExceeded(
            "run",
            "run_timeout_seconds",
            self.limits.run_seconds,
            detail,
            "raise the report's run_timeout_seconds (below the task's execution timeout) or make the report smaller",
        )


def check_run_timeout(seconds: int, *, field: str, report: str | None = None) -> int:
    """A run limit must end before the generate task's execution timeout, or Airflow kills the task first."""
    from include.categories import get_category

    ceiling = get_category("reports").execution_timeout.total_seconds()
    if seconds >= ceiling:
        raise InvalidReportError(
            field,
            f"{seconds} s is not below the reports tasks' execution timeout of {ceiling:.0f} s",
            report=report,
        )
    return seconds
