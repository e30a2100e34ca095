"""The task registry's pieces: breakers read from code, dbt patterns, the policy texts."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

from include.categories import describe_duration, describe_retries, describe_schedule
from include.registry.document import dbt_pattern
from include.registry.reach import BreakerReach


def _write(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def _project(root: Path) -> None:
    _write(
        root, "plugins/hooks/circuit_breaker.py", "class CircuitBreaker:\n    def __init__(self, name, target): ...\n"
    )
    _write(
        root,
        "plugins/hooks/db.py",
        """
        from hooks.circuit_breaker import CircuitBreaker
        NAME = "database"

        class DbHook:
            def breaker(self):
                return CircuitBreaker(NAME, "warehouse")

        class ReaderHook(DbHook):
            pass
        """,
    )
    _write(
        root,
        "include/feature/work.py",
        """
        from __future__ import annotations
        from hooks.db import DbHook, ReaderHook

        def reads(): return ReaderHook()
        def typed_only(hook: DbHook) -> DbHook: return None
        def sends():
            from hooks.circuit_breaker import CircuitBreaker
            return CircuitBreaker(name="external_api", target="host")
        def both(): return [reads(), sends()]
        def dispatch(kind): return HANDLERS[kind]()
        HANDLERS = {"send": sends}
        def recursive(): return recursive()
        """,
    )
    _write(
        root,
        "dags/example.py",
        """
        def task_body():
            from include.feature import work
            return work.both()

        def plain():
            return 1
        """,
    )


def _function(root: Path, module: str, name: str):
    namespace: dict = {}
    path = root / module
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace[name]


def test_breakers_are_followed_through_imports_module_attributes_and_base_classes(tmp_path):
    _project(tmp_path)
    reach = BreakerReach(tmp_path)
    assert reach.of_function(_function(tmp_path, "dags/example.py", "task_body")) == {"database", "external_api"}
    assert reach.of_function(_function(tmp_path, "dags/example.py", "plain")) == frozenset()
    assert reach._reach_symbol("include.feature.work", "reads") == {"database"}  # through the base class
    assert reach._reach_symbol("include.feature.work", "dispatch") == {"external_api"}  # through a table
    assert reach._reach_symbol("include.feature.work", "recursive") == frozenset()


def test_a_class_named_only_in_annotations_reaches_nothing(tmp_path):
    _project(tmp_path)
    assert BreakerReach(tmp_path)._reach_symbol("include.feature.work", "typed_only") == frozenset()


def test_the_project_hooks_name_the_three_breakers():
    root = Path(__file__).resolve().parents[2]
    from hooks.external_api import ExternalApiHook
    from hooks.warehouse import WarehouseHook
    from operators.guarded_dbt import GuardedDbtRunLocalOperator

    reach = BreakerReach(root)
    assert reach.of_class(WarehouseHook) == {"database"}
    assert reach.of_class(ExternalApiHook) == {"external_api"}
    assert reach.of_class(GuardedDbtRunLocalOperator) == {"dbt"}


def test_dbt_tasks_are_summarised_by_the_kind_of_their_node():
    model = {"resource_type": "model", "name": "stg_orders", "unique_id": "model.analytics.stg_orders"}
    assert dbt_pattern("dbt.stg_orders.run", model) == "dbt.<model>.run"
    source = {"resource_type": "source", "name": "raw_orders", "unique_id": "source.analytics.raw.orders"}
    assert dbt_pattern("dbt.raw_orders_source", source) == "dbt.<source>_source"
    test = {
        "resource_type": "test",
        "name": "relationships_a_b__0123456789",
        "unique_id": "test.analytics.relationships_a_b_.0123456789",
    }
    assert dbt_pattern("dbt.relationships_a_b__test", test) == "dbt.<test>_test"
    assert dbt_pattern("dbt.unrelated", {"resource_type": "seed", "name": "x_y"}) == "dbt.<seed>"


def test_policy_texts():
    assert describe_duration(timedelta(seconds=90)) == "90 s"
    assert describe_duration(timedelta(minutes=10)) == "10 min"
    assert describe_duration(7200) == "2 h"
    assert describe_retries(3, timedelta(seconds=30), 2.0, timedelta(minutes=10)) == (
        "3, from 30 s, x2 each time, at most 10 min"
    )
    assert describe_retries(0, timedelta(seconds=30), 2.0, None) == "none"
    assert describe_retries(1, timedelta(minutes=1), 0, None) == "1, from 1 min"
    assert describe_schedule("*/5 * * * *") == "`*/5 * * * *` (every 5 minutes, UTC)"
    assert describe_schedule("@daily") == "`@daily`"
    assert describe_schedule(None) == "triggered only"
