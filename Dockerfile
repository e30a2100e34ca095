# Astro Runtime 3.3 = Apache Airflow 3.3. The runtime's ONBUILD steps copy this project to
# /usr/local/airflow and install packages.txt (apt) and requirements.txt (pip).
FROM astrocrpublic.azurecr.io/runtime:3.3-2

# include/ and the plugins' packages importable in every process (locally, `make venv` installs the
# project editable for the same effect).
ENV PYTHONPATH=/usr/local/airflow:/usr/local/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    DBT_PROJECT_PATH=/usr/local/airflow/dbt \
    # Airflow's StatsD metrics (and the platform's own, prefix airflow.platform.*) to statsd_exporter.
    AIRFLOW__METRICS__STATSD_ON=True \
    AIRFLOW__METRICS__STATSD_HOST=statsd-exporter \
    AIRFLOW__METRICS__STATSD_PORT=9125 \
    AIRFLOW__METRICS__STATSD_PREFIX=airflow \
    AIRFLOW__METRICS__LEGACY_NAMES_ON=True \
    # Only what monitoring/statsd_mapping.yml maps (same list as devstack/airflow_env.py; a test checks).
    AIRFLOW__METRICS__METRICS_ALLOW_LIST="^platform[.],^ti[._],^task,^dag,^pool[.],^executor[.],^scheduler,^operator_,^trigger,^asset[.],^deadline_alerts[.],^celery[.]"

# OpenLineage (apache-airflow-providers-openlineage): every task's run events, the platform's jobs
# with their input and output datasets. Off until a transport is set: OPENLINEAGE_URL (Marquez) or
# AIRFLOW__OPENLINEAGE__TRANSPORT; docs/assets-and-lineage.md. Same settings as devstack/airflow_env.py.
ENV AIRFLOW__OPENLINEAGE__NAMESPACE=analytics-platform \
    AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD=True

# dbt (transform DAG). The docs task publishes `dbt docs generate` output to this directory and
# Cosmos's UI plugin serves it (Browse -> dbt Docs); docker-compose.override.yml shares it between
# the scheduler (which runs the tasks locally) and the API server. dbt's profile is the Airflow
# connection `warehouse` (Cosmos profile mapping), so the warehouse is configured once.
ENV AIRFLOW__COSMOS__DBT_DOCS_PROJECTS='{"analytics": {"dir": "/usr/local/airflow/dbt_docs/analytics", "name": "dbt Docs (Analytics)"}}' \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
# The manifest the transform DAG renders from (LoadMode.DBT_MANIFEST), built now: `dbt parse`
# needs no database. The docs directory is created here so the shared volume inherits its owner.
RUN python -m include dbt manifest && mkdir -p /usr/local/airflow/dbt_docs/analytics
