"""The asset events of a dbt invocation: one per relation dbt built in it, named like every platform asset.

dbt reports each node it finished (``NodeFinished``: the node's relation, materialization and
result, with the adapter's ``rows_affected`` where it has one). :func:`built_relation_events` keeps
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
    def from_node_finished(cls, event: Any) -> BuiltNode:
        """From dbt's ``NodeFinished`` event (as its event callbacks receive it)."""
        node = event.data.node_info
        result = event.data.run_result
        rows = _rows_affected(getattr(result, "adapter_response", None))
        return cls(
            unique_id=node.unique_id,
            resource_type=node.resource_type,
            status=str(result.status or node.node_status),
            schema=node.node_relation.schema,
            alias=node.node_relation.alias,
            materialized=node.materialized,
            rows_affected=rows,
        )

    @property
    def changed_a_relation(self) -> bool:
        if self.resource_type not in _WRITING_RESOURCES or self.status != "success":
            return False
        if self.materialized == "ephemeral" or not (self.schema and self.alias):
            return False
        return not (self.materialized == "incremental" and self.rows_affected == 0)


def _rows_affected(response: Any) -> int | None:
    """``rows_affected`` of dbt's adapter response (a protobuf Struct or a mapping), when it says."""
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
