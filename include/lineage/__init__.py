"""Assets and lineage: what the platform's jobs read and write, named once, for Airflow and OpenLineage.

* :mod:`include.lineage.assets`: the one naming function of a warehouse relation (and a report
  file) as an Airflow Asset, the aliases the DAGs emit and are scheduled on, and the events a run
  emits for what it changed.
* :mod:`include.lineage.triggers`: the relations that changed, from a run's triggering asset events.
* :mod:`include.lineage.relations`: the relations a SQL query reads (sqlglot, resolved the way the
  reader role resolves them, plain views expanded through the catalog).
* :mod:`include.lineage.openlineage`: a task's inputs and outputs reported to the OpenLineage
  provider (hook-level lineage).
"""
