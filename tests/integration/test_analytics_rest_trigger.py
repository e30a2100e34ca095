"""How the analytics API service triggers the analytics DAG: the two requests of docs/analytics.md, for real.

1. ``POST /auth/token`` with the service account's user name and password -> a JWT;
2. ``POST /api/v2/dags/analytics/dagRuns`` with ``Authorization: Bearer <JWT>`` and
   ``{"logical_date": null, "conf": {...}}`` -> the run, which the API then lists.
"""

from __future__ import annotations

import requests


def _serialize_project_dags() -> None:
    """Write the project's DAGs to the metadata DB, as the dag-processor would (no scheduler runs here)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)


def test_the_service_triggers_a_run_with_a_token_and_conf(api_server):
    _serialize_project_dags()

    token = requests.post(
        f"{api_server.url}/auth/token",
        json={"username": "admin", "password": api_server.password},
        timeout=10,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    response = requests.post(
        f"{api_server.url}/api/v2/dags/analytics/dagRuns",
        headers=headers,
        json={"logical_date": None, "conf": {"jobs": ["materialized_views"]}},
        timeout=20,
    )

    assert response.status_code == 200, response.text
    run = response.json()
    assert run["dag_id"] == "analytics" and run["conf"] == {"jobs": ["materialized_views"]}
    listed = requests.get(
        f"{api_server.url}/api/v2/dags/analytics/dagRuns/{run['dag_run_id']}", headers=headers, timeout=10
    )
    assert listed.status_code == 200
    assert listed.json()["state"] in ("queued", "running")
    assert listed.json()["run_type"] == "manual"

    # without the token the service is refused
    refused = requests.post(f"{api_server.url}/api/v2/dags/analytics/dagRuns", json={"logical_date": None}, timeout=10)
    assert refused.status_code == 401
