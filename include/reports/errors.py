"""The errors of the reports feature: a bad definition or request, and a report that cannot be generated."""

from __future__ import annotations


class InvalidReportError(ValueError):
    """A report definition or an ad-hoc request is invalid; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str, *, report: str | None = None) -> None:
        self.field, self.report = field, report
        where = f"report {report!r}: " if report else ""
        super().__init__(f"{where}field {field!r}: {message}")


class ReportGenerationError(Exception):
    """The report cannot be generated as it is defined: fix the report, retrying will not help."""

    #: Label of the ``reports.failed`` metric.
    reason = "invalid"

    def describe(self) -> str:
        return str(self)


class ReportQueryError(ReportGenerationError):
    """The report's SQL was refused or failed on the server."""

    reason = "query"

    def describe(self) -> str:
        return f"the query failed: {self}"


def describe_failure(error: BaseException) -> str:
    """What went wrong, for the run's error: which limit, the chart, or the query (the server's words)."""
    if isinstance(error, ReportGenerationError):
        return error.describe()
    return f"the query failed: {error}"


class ReportNotFoundError(InvalidReportError):
    """An ad-hoc request names a report that does not exist."""


class ReportRunError(RuntimeError):
    """A run could not be completed now; the task is retried."""


class DeliveryError(ReportRunError):
    """One or more deliveries of a run failed; they stay pending and are retried."""


class CleanupError(RuntimeError):
    """Some expired files could not be deleted; they are tried again by the next cleanup."""
