"""Test harness: real services, a throw-away Airflow home, DAG runs, recording servers."""
