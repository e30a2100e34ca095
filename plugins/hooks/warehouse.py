"""The warehouse PostgreSQL hook: the Postgres provider's hook behind the ``database`` circuit breaker."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from hooks.circuit_breaker import CircuitBreaker

if TYPE_CHECKING:
    import psycopg

#: SQLSTATE classes that mean the database (not the statement) is in trouble: connection exceptions,
#: insufficient resources, operator intervention (shutdown, cannot connect now), system errors.
_DEPENDENCY_SQLSTATES = ("08", "53", "57P", "58", "XX")


def is_database_failure(error: BaseException) -> bool:
    """Whether ``error`` counts against the database breaker.

    Connection refused or lost, server shutdown and resource exhaustion count. A user's SQL error
    (syntax, permissions, constraint, read-only violation) or a statement timeout does not.
    """
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency of the provider
        psycopg = None
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if sqlstate:
        return str(sqlstate).startswith(_DEPENDENCY_SQLSTATES)
    if psycopg is not None and isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)):
        return True  # raised client-side: could not connect, connection lost
    return isinstance(error, (ConnectionError, TimeoutError))


class WarehouseHook(PostgresHook):
    """Interact with the analytics warehouse through the ``database`` circuit breaker.

    Connecting and every statement run through the provider's methods (``run``, ``get_records``,
    ``get_first``...) go through the breaker of this connection. For the platform's own work use
    :meth:`transaction`; for user-supplied SQL use :meth:`read_only_transaction`.

    :param warehouse_conn_id: Airflow connection of the warehouse (``postgres`` type).
    :param application_name: shown in ``pg_stat_activity`` for the connections of this hook.
    """

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = "warehouse"
    conn_type = "postgres"
    hook_name = "Analytics warehouse (PostgreSQL, circuit breaker)"

    def __init__(self, *args: Any, application_name: str = "analytics-platform", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.application_name = application_name
        self._breaker: CircuitBreaker | None = None

    @property
    def breaker(self) -> CircuitBreaker:
        """The ``database`` breaker of this connection (configuration read at first use)."""
        if self._breaker is None:
            self._breaker = CircuitBreaker("database", self.get_conn_id(), is_failure=is_database_failure)
        return self._breaker

    def _create_connection(self, conn_args: dict[str, Any]):
        conn_args.setdefault("connect_timeout", 10)
        conn_args.setdefault("application_name", self.application_name)
        return super()._create_connection(conn_args)

    def get_conn(self):
        """Open a connection through the breaker (refused when the breaker is open)."""
        return self.breaker.call(super().get_conn)

    def _run_command(self, cur: Any, sql_statement: str, parameters: Any) -> None:
        with self.breaker.guard():
            super()._run_command(cur, sql_statement, parameters)

    @contextmanager
    def transaction(
        self,
        *,
        statement_timeout: float | None = None,
        lock_timeout: float | None = None,
    ) -> Iterator[psycopg.Connection]:
        """A connection in one transaction, committed on success and rolled back on error.

        Connection failures inside the block (lost connection, shutdown) count against the breaker;
        errors of the statements themselves do not.
        """
        conn = self.get_conn()
        try:
            with self.breaker.guard(), conn.transaction():
                _set_timeouts(conn, statement_timeout, lock_timeout)
                yield conn
        finally:
            conn.close()

    @contextmanager
    def read_only_transaction(
        self, *, statement_timeout: float, connection: psycopg.Connection | None = None
    ) -> Iterator[psycopg.Connection]:
        """A connection in a READ ONLY transaction with a statement timeout, for user-supplied SQL.

        The transaction is read-only from its first statement on, so a later
        ``SET TRANSACTION READ WRITE`` is refused by the server; combine with
        :func:`run_single_statement` so that the SQL cannot end the transaction either.

        :param connection: an open connection from :meth:`get_conn` to reuse for many such
            transactions (each still rolled back, so no session setting outlives it); it is left
            open. By default a new connection is opened and closed.
        """
        conn = connection if connection is not None else self.get_conn()
        try:
            conn.autocommit = True
            with self.breaker.guard():
                conn.execute("BEGIN READ ONLY")
                try:
                    _set_timeouts(conn, statement_timeout, None)
                    yield conn
                finally:
                    conn.execute("ROLLBACK")
        finally:
            if connection is None:
                conn.close()


def _set_timeouts(conn: psycopg.Connection, statement_timeout: float | None, lock_timeout: float | None) -> None:
    """Transaction-local timeouts in seconds (``set_config(..., true)`` ends with the transaction)."""
    settings = {"statement_timeout": statement_timeout, "lock_timeout": lock_timeout}
    for name, seconds in settings.items():
        if seconds is not None:
            conn.execute("SELECT set_config(%s, %s, true)", [name, f"{max(1, int(seconds * 1000))}ms"])


def run_single_statement(
    conn: psycopg.Connection,
    sql: str,
    parameters: Sequence[Any] | Mapping[str, Any] | None = None,
) -> psycopg.Cursor:
    """Execute exactly one statement as a server-side prepared statement and return the cursor.

    Several statements in one string are refused by the server ("cannot insert multiple commands
    into a prepared statement"), so user SQL cannot smuggle a ``COMMIT`` or a second command.
    """
    return conn.execute(sql, parameters or None, prepare=True)
