"""The dbt side of the platform: project settings, demo data, manifest, docs and watcher wiring.

The ``transform`` DAG (``dags/transform.py``) renders the dbt project with Cosmos; this package
holds what that DAG and the operator commands need, so the DAG file stays declarative.
"""
