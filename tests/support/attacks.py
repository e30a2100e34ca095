"""What a user's SQL could try against the database server, and a witness that nothing changed.

Every attack is a query returning one number, so the very same SQL is a valid alert, a stored
report and an ad-hoc report: run by a privileged role, each would succeed (and the server would
change); on the reader role each must be refused.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg


@dataclass(frozen=True)
class Attack:
    name: str
    sql: str
    #: what the error says (alert ``last_error``, report run ``error``)
    refused: str


@dataclass
class ServerWitness:
    """Sessions, a file path, a table and the large objects an attack would change."""

    marker: Path
    admin_session: psycopg.Connection
    platform_session: psycopg.Connection
    admin_url: str
    large_objects: int

    def attacks(self) -> list[Attack]:
        admin_pid, platform_pid = self.admin_session.info.backend_pid, self.platform_session.info.backend_pid
        return [
            Attack("read_server_file", "SELECT length(pg_read_file('/etc/passwd'))", "permission denied for function"),
            Attack("list_data_directory", "SELECT count(*) FROM pg_ls_dir('.')", "permission denied for function"),
            Attack("read_pg_authid", "SELECT count(*) FROM pg_authid", "permission denied for table pg_authid"),
            Attack(
                "read_other_reports",
                "SELECT count(*) FROM analytics_reports WHERE recipients IS NOT NULL",
                "permission denied for table analytics_reports",
            ),
            Attack(
                "read_alert_outbox",
                "SELECT count(*) FROM analytics_alert_notifications",
                "permission denied for table analytics_alert_notifications",
            ),
            Attack(
                "terminate_admin_session",
                f"SELECT pg_terminate_backend({admin_pid})::int",
                "must be a superuser to terminate superuser process",
            ),
            Attack(
                "cancel_platform_session",
                f"SELECT pg_cancel_backend({platform_pid})::int",
                "must be a member of the role whose query is being canceled",
            ),
            Attack("copy_to_program", f"COPY (SELECT 1) TO PROGRAM 'touch {self.marker}'", "COPY statements never run"),
            Attack(
                "do_block",
                f"DO $$ BEGIN PERFORM pg_terminate_backend({admin_pid}); END $$",
                "DO statements never run",
            ),
            Attack("lo_import", "SELECT lo_import('/etc/passwd')::bigint", "permission denied for function lo_import"),
            Attack(
                "set_role_back",
                "SELECT length(set_config('role', 'postgres', false))",
                'permission denied to set role "postgres"',
            ),
            Attack(
                "write_through_cte",
                "WITH gone AS (DELETE FROM privilege_victim RETURNING 1) SELECT count(*) FROM gone",
                "read-only transaction",
            ),
        ]

    def assert_unchanged(self) -> None:
        """No file written, no session ended or cancelled, no row deleted, no large object imported."""
        assert not self.marker.exists(), f"a shell command ran on the database server: {self.marker}"
        for session in (self.admin_session, self.platform_session):
            assert session.execute("SELECT 1").fetchone() == (1,), "a session was ended"
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            assert admin.execute("SELECT count(*) FROM privilege_victim").fetchone()[0] == 3
            assert admin.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0] == self.large_objects


@contextmanager
def server_witness(admin_url: str, platform_url: str) -> Iterator[ServerWitness]:
    """Open the victim sessions and the victim table; prove first that the file check can see a write."""
    marker = Path(tempfile.gettempdir()) / f"user-sql-attack-{secrets.token_hex(6)}"
    with (
        psycopg.connect(admin_url, autocommit=True) as admin,
        psycopg.connect(platform_url, autocommit=True) as platform,
    ):
        admin.execute("DROP TABLE IF EXISTS privilege_victim")
        admin.execute("CREATE TABLE privilege_victim AS SELECT generate_series(1, 3) AS id")
        # control: the same COPY as a superuser does write the file, so its absence later means something
        # the program reads its input first: one that exits without reading breaks the server's pipe
        admin.execute(f"COPY (SELECT 1) TO PROGRAM 'cat > /dev/null; touch {marker}'")
        assert marker.exists(), "the database server's files are not visible here; the file check would be blind"
        admin.execute(f"COPY (SELECT 1) TO PROGRAM 'cat > /dev/null; rm -f {marker}'")  # the server's user owns it
        objects = admin.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()[0]
        yield ServerWitness(marker, admin, platform, admin_url, objects)
