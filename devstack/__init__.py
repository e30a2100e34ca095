"""Local stack for development and tests: services, Airflow environment, settings."""
