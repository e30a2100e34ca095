"""Pure parts of least privilege: what user SQL starts with, the roles SQL, the Astro warehouse's init script."""

from __future__ import annotations

import pytest

from devstack.__main__ import LOCAL_ROLES
from devstack.airflow_env import PROJECT_ROOT
from hooks.warehouse import leading_keyword
from include.security.roles import RolePlan, RoleSetupError, plan_arguments, render_sql


@pytest.mark.parametrize(
    ("sql", "keyword"),
    [
        ("SELECT 1", "SELECT"),
        ("  (select 1) UNION (select 2)", "SELECT"),
        ("-- a comment\nWITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
        ("/* outer /* nested */ still a comment */ VALUES (1)", "VALUES"),
        ("/* /* */ SELECT 1 */ CALL p()", "CALL"),  # nested comments: PostgreSQL sees CALL
        ("/* unterminated SELECT 1", ""),
        ("COPY (SELECT 1) TO PROGRAM 'id'", "COPY"),
        ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN"),
        ("", ""),
    ],
)
def test_the_leading_keyword_skips_comments_the_way_postgresql_does(sql, keyword):
    assert leading_keyword(sql) == keyword


def test_the_astro_warehouse_init_script_is_the_roles_sql_of_make_run():
    script = (PROJECT_ROOT / "devstack" / "warehouse_roles.sql").read_text()
    assert script == render_sql(LOCAL_ROLES, "analytics"), (
        "devstack/warehouse_roles.sql is out of date: regenerate it with DATABASE_URL=.../analytics "
        f"python -m include roles sql {' '.join(plan_arguments(LOCAL_ROLES))} > devstack/warehouse_roles.sql"
    )


@pytest.mark.parametrize(
    "plan",
    [
        {"reader_role": "x'; DROP ROLE postgres; --"},
        {"grant_schemas": ("marts$x$",)},
        {"platform_role": "same", "reader_role": "same"},
    ],
)
def test_role_and_schema_names_that_could_escape_the_sql_are_refused(plan):
    with pytest.raises(RoleSetupError):
        RolePlan(**plan)
