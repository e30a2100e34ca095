"""dbt's profile for the ``transform`` DAG: the Airflow connection ``warehouse``, or the project's own file.

Imported by the DAG file only (it imports Cosmos, which must come after Airflow).
"""

from __future__ import annotations

from cosmos import ProfileConfig
from cosmos.profiles import PostgresUserPasswordProfileMapping

from hooks.warehouse import WarehouseHook
from include.transform.project import CONNECT_TIMEOUT, DbtProject


def profile_config(project: DbtProject):
    """Cosmos ``ProfileConfig``: the project's own ``profiles.yml``, or the ``warehouse`` connection."""
    if project.profiles_yml is not None:
        return ProfileConfig(
            profile_name=project.profile_name,
            target_name=project.target_name,
            profiles_yml_filepath=project.profiles_yml,
        )
    return ProfileConfig(
        profile_name=project.profile_name,
        target_name=project.target_name,
        profile_mapping=WarehouseProfileMapping(
            conn_id=WarehouseHook.default_conn_name,
            profile_args={
                "schema": project.schema,
                "threads": project.threads,
                "connect_timeout": CONNECT_TIMEOUT,
                "retries": 0,
            },
        ),
    )


class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
    """Cosmos's Postgres user/password mapping, also for a role that logs in without a password.

    A local server with ``trust`` authentication has connections without a password; Cosmos's
    mapping requires one. Here an absent password is an empty one (dbt passes it on as such).
    """

    required_fields = ["host", "user", "dbname"]

    def get_dbt_value(self, name: str):
        value = super().get_dbt_value(name)
        return "" if value is None and name == "password" else value
