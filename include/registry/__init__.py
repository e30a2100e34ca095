"""The task registry, ``docs/task-registry.md``, generated from the DAGs (``python -m include registry``)."""
