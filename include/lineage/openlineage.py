"""A task's inputs and outputs for the OpenLineage provider: hook-level lineage, in the assets' names.

The provider's listener builds each task's run events; for a ``@task`` it has no extractor, so it
reads what the task's hooks reported to Airflow's hook lineage collector. The platform's jobs
report there what they read and wrote, as the same URIs as their assets
(:func:`include.lineage.assets.relation_uri`); the postgres provider turns them into OpenLineage
datasets (namespace ``postgres://host:port``, name ``database.schema.table``). Without an
OpenLineage transport configured the collector is a no-op and this costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def report_lineage(hook: Any, *, inputs: Iterable[str] = (), outputs: Iterable[str] = ()) -> None:
    """Report asset URIs read (``inputs``) and written (``outputs``) by the running task through ``hook``."""
    from airflow.sdk.lineage import get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    for uri in dict.fromkeys(inputs):
        collector.add_input_asset(context=hook, uri=uri)
    for uri in dict.fromkeys(outputs):
        collector.add_output_asset(context=hook, uri=uri)


def report_relations(hook: Any, *, read: Iterable[str] = (), written: Iterable[str] = ()) -> None:
    """Report warehouse relations (``schema.table`` keys) read and written, named as their assets.

    Lineage never fails the job: a relation name or connection that cannot be turned into a URI is
    logged and left out.
    """
    import logging

    from include.lineage.assets import Relation, warehouse_location

    try:
        location = warehouse_location()
        inputs = [location.relation_uri(Relation.from_key(key)) for key in read]
        outputs = [location.relation_uri(Relation.from_key(key)) for key in written]
        report_lineage(hook, inputs=inputs, outputs=outputs)
    except Exception:  # lineage is an observer: it must not fail the work it describes
        logging.getLogger(__name__).warning("lineage of this task not reported", exc_info=True)
