"""The ``dbt`` circuit breaker: which dbt outcomes count against the warehouse, and the guard.

A dbt invocation counts as a failure of the dependency only when dbt could not reach the
warehouse (connection refused, unknown host, authentication or database missing at connect time,
connection lost mid-run). A failing data test, a stale source or a SQL error in a model is the
project's problem, not the warehouse's: dbt answered, so the breaker records a success.

Three counted failures in a row open the breaker (``hooks.circuit_breaker``: 3 failures, 120 s);
while it is open every dbt task is *rescheduled* to the moment it may half-open instead of
hammering an unreachable warehouse, and keeps its retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from hooks.circuit_breaker import CircuitBreaker

log = logging.getLogger(__name__)

T = TypeVar("T")
BREAKER_NAME = "dbt"

#: Exception class names dbt raises when it cannot open a connection.
_CONNECT_ERROR_TYPES = ("FailedToConnectError",)
#: Driver messages that mean the connection to PostgreSQL failed or was lost (not a SQL error).
_CONNECTION_MARKERS = (
    "failedtoconnecterror",
    "could not connect to server",
    "could not translate host name",
    "connection refused",
    "connection timed out",
    "timeout expired",
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "ssl connection has been closed unexpectedly",
    "connection already closed",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "no connection to the server",
)


class DbtWarehouseUnreachableError(RuntimeError):
    """dbt ran but could not reach the warehouse; counts against the ``dbt`` breaker."""


def breaker_target(profile_name: str, target_name: str) -> str:
    """The breaker target of a dbt profile target: one warehouse, one breaker."""
    return f"{profile_name}.{target_name}"


def is_dbt_dependency_failure(error: BaseException) -> bool:
    """Whether an exception from a guarded dbt invocation counts against the breaker."""
    return isinstance(error, (DbtWarehouseUnreachableError, ConnectionError, TimeoutError))


def dbt_breaker(profile_name: str, target_name: str) -> CircuitBreaker:
    """The ``dbt`` breaker of one profile target (configuration read now, at run time)."""
    from hooks.circuit_breaker import CircuitBreaker

    return CircuitBreaker(BREAKER_NAME, breaker_target(profile_name, target_name), is_failure=is_dbt_dependency_failure)


def _mentions_connection_failure(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _CONNECTION_MARKERS)


def unreachable_warehouse_reason(result: Any) -> str | None:
    """Why a finished dbt invocation could not reach the warehouse, or ``None`` if it could.

    ``result`` is what Cosmos got back: a ``dbtRunnerResult`` (``InvocationMode.DBT_RUNNER``) or a
    ``FullOutputSubprocessResult`` (``InvocationMode.SUBPROCESS``).
    """
    if getattr(result, "success", None) is True or getattr(result, "exit_code", None) == 0:
        return None
    exception = getattr(result, "exception", None)
    if exception is not None:
        if type(exception).__name__ in _CONNECT_ERROR_TYPES or _mentions_connection_failure(str(exception)):
            return f"{type(exception).__name__}: {exception}".strip()
        return None
    node_results = getattr(getattr(result, "result", None), "results", None) or []
    for node_result in node_results:
        message = str(getattr(node_result, "message", "") or "")
        if str(getattr(node_result, "status", "")) in ("error", "runtime error") and _mentions_connection_failure(
            message
        ):
            return message.strip()
    output = getattr(result, "full_output", None)
    if output:
        failed_lines = [line for line in output if _mentions_connection_failure(line)]
        if failed_lines:
            return failed_lines[0].strip()
    return None


def guarded_dbt_invocation(breaker: CircuitBreaker, invoke: Callable[[], T]) -> T:
    """Run one dbt invocation through ``breaker`` and return its result.

    Raises :class:`~hooks.circuit_breaker.CircuitOpenError` without calling ``invoke`` while the
    breaker is open, and :class:`DbtWarehouseUnreachableError` (counted) when dbt could not reach
    the warehouse. Any other outcome, failed tests and SQL errors included, is returned as is.
    """
    with breaker.guard():
        result = invoke()
        reason = unreachable_warehouse_reason(result)
        if reason is not None:
            log.error("dbt could not reach the warehouse (%s/%s): %s", breaker.name, breaker.target, reason)
            raise DbtWarehouseUnreachableError(f"dbt could not reach the warehouse ({breaker.target}): {reason}")
    return result
