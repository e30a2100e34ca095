"""The asset events of a dbt invocation: one per relation dbt built in it, named like every platform asset.

dbt returns each node's result (its relation, materialization and status, with the adapter's
``rows_affected`` where it has one). :func:`built_relation_events` keeps
the models, seeds and snapshots that succeeded and wrote a relation, and names each with
:func:`hooks.warehouse_assets.relation_uri`. Nothing for a node that failed, was skipped, is
ephemeral, or is an incremental model whose run changed no row: a run that changed nothing emits
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hooks.warehouse_assets import Relation, WarehouseLocation

#: dbt resources that write a relation of their own.
_WRITING_RESOURCES = frozenset({"model", "seed", "snapshot"})


@dataclass(frozen=True)
class BuiltNode:
    """What dbt said about one node it finished."""

    unique_id: str
    resource_type: str
    status: str
    schema: str
    alias: str
    materialized: str = ""
    rows_affected: int | None = None

    @classmethod
    def from_run_result(cls, result: Any) -> BuiltNode:
        """From one node's result of a dbt invocation (``dbtRunnerResult.result.results``)."""
        node = result.node
        config = getattr(node, "config", None)
        return cls(
            unique_id=node.unique_id,
            resource_type=str(getattr(node.resource_type, "value", node.resource_type)),
            status=str(getattr(result.status, "value", result.status)),
            schema=getattr(node, "schema", "") or "",
            alias=getattr(node, "alias", "") or getattr(node, "name", "") or "",
            materialized=str(getattr(config, "materialized", "") or ""),
            rows_affected=_rows_affected(getattr(result, "adapter_response", None)),
        )

    @property
    def changed_a_relation(self) -> bool:
        if self.resource_type not in _WRITING_RESOURCES or self.status != "success":
            return False
        if self.materialized == "ephemeral" or not (self.schema and self.alias):
            return False
        return not (self.materialized == "incremental" and self.rows_affected == 0)


def _rows_affected(response: Any) -> int | None:
    """``rows_affected`` of dbt's adapter response (a mapping), when it says."""
    if response is None:
        return None
    try:
        value = response["rows_affected"]
    except (KeyError, TypeError, ValueError):
        return None
    try:
        rows = int(value)
    except (TypeError, ValueError):
        return None
    return rows if rows >= 0 else None


def built_relation_events(nodes: Iterable[BuiltNode], location: WarehouseLocation) -> dict[str, dict[str, Any]]:
    """Asset URI -> event extra, for each relation the invocation built (in the order dbt finished them)."""
    events: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if not node.changed_a_relation:
            continue
        extra: dict[str, Any] = {"dbt_unique_id": node.unique_id, "materialized": node.materialized}
        if node.rows_affected is not None:
            extra["rows_affected"] = node.rows_affected
        events[location.relation_uri(Relation(node.schema, node.alias))] = extra
    return events


def built_nodes(runner_result: Any) -> list[BuiltNode]:
    """The nodes of a ``dbtRunnerResult`` whose command ran nodes (run, build, seed, snapshot, test)."""
    results = getattr(getattr(runner_result, "result", None), "results", None) or ()
    return [BuiltNode.from_run_result(r) for r in results if getattr(r, "node", None) is not None]


class DbtAssetsMixin:
    """A dbt operator that emits one asset event per relation its dbt invocations built.

    The events go through the alias in :attr:`asset_alias` (set with :func:`emit_built_relations`,
    which also makes the alias an outlet of the task); with no alias the operator emits nothing.
    Only ``InvocationMode.DBT_RUNNER`` reports node results (a subprocess invocation emits nothing).
    """

    asset_alias: str | None = None

    def run_dbt_runner(self, command: list[str], env: dict[str, str], cwd: str, **kwargs: Any) -> Any:
        result = super().run_dbt_runner(command, env, cwd, **kwargs)  # type: ignore[misc]
        self.__dict__.setdefault("_built_nodes", []).extend(built_nodes(result))
        return result

    def execute(self, context: Any, **kwargs: Any) -> Any:
        self.__dict__["_built_nodes"] = []
        result = super().execute(context, **kwargs)  # type: ignore[misc]
        self.announce_built_relations(context)
        return result

    def announce_built_relations(self, context: Any) -> int:
        """Emit the events of what this task's dbt invocations built so far; return how many."""
        from hooks.warehouse_assets import emit_asset_events, warehouse_location

        nodes = self.__dict__.get("_built_nodes") or []
        if not self.asset_alias or not nodes:
            return 0
        events = built_relation_events(nodes, warehouse_location())
        emit_asset_events(context["outlet_events"], self.asset_alias, events)
        for uri, extra in events.items():
            self.log.info("asset event: %s built %s", extra["dbt_unique_id"], uri)  # type: ignore[attr-defined]
        return len(events)


def emit_built_relations(tasks: Iterable[Any], alias: str) -> int:
    """Make every dbt task of ``tasks`` that builds relations emit their events through ``alias``; how many."""
    from airflow.sdk import AssetAlias

    count = 0
    for task in tasks:
        if isinstance(task, DbtAssetsMixin):
            task.asset_alias = alias
            task.outlets = [*task.outlets, AssetAlias(alias)]
            count += 1
    return count
