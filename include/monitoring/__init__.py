"""Health checks, system metrics and task statistics of the platform."""
