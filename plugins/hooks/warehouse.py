"""The warehouse PostgreSQL hooks: the platform's own (``warehouse``) and the reader for user SQL.

* :class:`WarehouseHook` (connection ``warehouse``): the platform's role, for the platform's own
  statements (its tables, refreshes, catalog). Never for SQL a user wrote.
* :class:`WarehouseReaderHook` (connection ``warehouse_reader``): a least-privilege login role for
  alert, report and ad-hoc SQL. Every session it opens is checked first (:func:`reader_problems`):
  a superuser, a member of a role that reaches the server or other sessions, or a role that may
  touch the platform's tables is refused with :class:`ReaderConnectionRefused`, naming the
  connection and what is wrong. Only a warehouse that does not answer a fresh ``SELECT 1`` counts
  against its breaker: a query that hits a server limit or ends its own session does not.

Both go through the ``database`` circuit breaker of their connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk.exceptions import AirflowFailException

from hooks.circuit_breaker import CircuitBreaker
from hooks.reader_privileges import reader_problems

if TYPE_CHECKING:
    import psycopg

#: SQLSTATE classes that mean the database (not the statement) is in trouble: connection exceptions,
#: insufficient resources, operator intervention (shutdown, cannot connect now), system errors.
_DEPENDENCY_SQLSTATES = ("08", "53", "57P", "58", "XX")

#: What user SQL may start with (after comments and parentheses): a query, nothing else.
READ_STATEMENTS = ("SELECT", "WITH", "VALUES", "TABLE")


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
    :meth:`transaction`; user-supplied SQL runs on :class:`WarehouseReaderHook` only.

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

    def is_failure(self, error: BaseException) -> bool:
        """Whether ``error`` counts against this connection's breaker."""
        return is_database_failure(error)

    @property
    def breaker(self) -> CircuitBreaker:
        """The ``database`` breaker of this connection (configuration read at first use)."""
        if self._breaker is None:
            self._breaker = CircuitBreaker("database", self.get_conn_id(), is_failure=self.is_failure)
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
        """A connection in a READ ONLY transaction with a statement timeout.

        The transaction is read-only from its first statement on, so a later
        ``SET TRANSACTION READ WRITE`` is refused by the server; combine with
        :func:`describe_query` and :func:`run_single_statement` so that the SQL cannot end the
        transaction either. A statement that ends or breaks the session leaves the connection
        closed (``connection.closed``); its error is the one raised.

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
                    _roll_back(conn)
        finally:
            if connection is None:
                conn.close()


def _roll_back(conn: psycopg.Connection) -> None:
    """End the transaction; on a session that broke, close it so the caller's error stays the error."""
    if conn.closed or conn.broken:
        conn.close()
        return
    try:
        conn.execute("ROLLBACK")
    except Exception:
        conn.close()
        raise


class ReaderConnectionRefused(AirflowFailException):
    """The reader connection is missing or may reach beyond the data: user SQL does not run.

    A configuration error: the task fails at once (no retries) with what an operator must fix.
    """


class WarehouseReaderHook(WarehouseHook):
    """The least-privilege reader for user SQL (alerts, reports, ad-hoc reports).

    Every connection is checked before it is handed out (:func:`reader_problems`); a missing or
    privileged reader raises :class:`ReaderConnectionRefused`. There is no fallback to the
    platform's connection.

    :param warehouse_reader_conn_id: Airflow connection of the reader role (``postgres`` type).
    :param private_tables: the platform's own tables (schema-qualified); the reader may not touch them.
    """

    conn_name_attr = "warehouse_reader_conn_id"
    default_conn_name = "warehouse_reader"
    hook_name = "Analytics warehouse reader for user SQL (least privilege, circuit breaker)"

    def __init__(self, *args: Any, private_tables: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.private_tables = tuple(private_tables)

    def get_conn(self):
        """A connection of the reader role, refused unless the role is fit for user SQL."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        conn_id = self.get_conn_id()
        try:
            conn = super().get_conn()
        except AirflowNotFoundException:
            raise ReaderConnectionRefused(
                f"connection {conn_id!r} is not defined: alert, report and ad-hoc SQL run only on this "
                "least-privilege reader connection, never on the platform's (see docs/security.md)"
            ) from None
        try:
            with self.breaker.guard():
                user = conn.execute("SELECT session_user").fetchone()[0]
                problems = reader_problems(conn, self.private_tables)
                if not conn.autocommit:
                    conn.rollback()
        except BaseException:
            conn.close()
            raise
        if problems:
            conn.close()
            raise ReaderConnectionRefused(
                f"connection {conn_id!r} (role {user}) may not run user SQL: it " + "; it ".join(problems) + ". "
                "Use a least-privilege login role (python -m include roles setup; see docs/security.md)."
            )
        return conn

    def is_failure(self, error: BaseException) -> bool:
        """Only a warehouse that does not answer a fresh connection counts, never the query's own doing."""
        return is_database_failure(error) and not self.warehouse_answers(error)

    def warehouse_answers(self, error: BaseException | None = None) -> bool:
        """Whether a new session of the reader gets an answer to ``SELECT 1`` (checked once per ``error``)."""
        checked = getattr(error, "_warehouse_answered", None)
        if checked is not None:
            return checked
        answered = False
        with suppress(Exception):
            probe = PostgresHook.get_conn(self)  # not through the breaker: this is the breaker's question
            try:
                answered = probe.execute("SELECT 1").fetchone() == (1,)
            finally:
                probe.close()
        if error is not None:
            with suppress(AttributeError, TypeError):
                error._warehouse_answered = answered  # type: ignore[attr-defined]
        return answered


# ----------------------------------------------------------------------------- user SQL


class RefusedStatement(ValueError):
    """User SQL that is not one row-returning query; it was not run."""


def leading_keyword(sql: str) -> str:
    """The first word of ``sql`` after whitespace, comments (nested ``/* */`` too) and ``(``."""
    i, n = 0, len(sql)
    while i < n:
        if sql[i].isspace() or sql[i] == "(":
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    match = re.match(r"[A-Za-z_]+", sql[i:])
    return match.group(0).upper() if match else sql[i : i + 1]


def describe_query(conn: psycopg.Connection, sql: str) -> tuple[str, ...]:
    """Check that ``sql`` is one query returning rows, without running it; return its column names.

    It must start with SELECT, WITH, VALUES or TABLE, and the server must prepare it as exactly one
    statement that returns rows: ``COPY``, ``DO``, ``CALL``, ``SET``, ``SHOW``, ``EXPLAIN``,
    ``LISTEN`` and every other utility statement raise :class:`RefusedStatement` and never execute.
    Errors in the SQL itself (syntax, unknown table) raise the server's error.
    """
    from psycopg import errors, pq

    encoding = conn.info.encoding
    pgconn = conn.pgconn
    result = pgconn.prepare(b"", sql.encode(encoding))  # parses and plans; runs nothing
    if result.status != pq.ExecStatus.COMMAND_OK:
        error = errors.error_from_result(result, encoding=encoding)
        if "multiple commands" in str(error):
            raise RefusedStatement("the SQL must be exactly one statement; found several") from error
        raise error
    keyword = leading_keyword(sql)
    if keyword not in READ_STATEMENTS:
        raise RefusedStatement(
            f"the SQL must be one query ({', '.join(READ_STATEMENTS)}); {keyword or 'empty'} statements never run"
        )
    described = pgconn.describe_prepared(b"")
    if described.status != pq.ExecStatus.COMMAND_OK:
        raise errors.error_from_result(described, encoding=encoding)
    if described.nfields == 0:
        raise RefusedStatement("the SQL must be a query that returns rows (SELECT, WITH ... SELECT, VALUES, TABLE)")
    return tuple((described.fname(i) or b"?column?").decode(encoding) for i in range(described.nfields))


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
