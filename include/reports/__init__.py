"""Scheduled and ad-hoc reports: definitions, streaming export, delivery, retention.

``definitions`` validates report definitions and ad-hoc requests, ``schedule`` decides which cron
slot is due, ``export`` streams a query into a CSV / gzipped CSV / XLSX file, ``storage`` publishes
files through Airflow's object storage, ``delivery`` sends them by email and to object storage, and
``runs`` ties these together for the tasks of the ``reports`` DAG, with the run history in
``analytics_report_runs`` and ``analytics_report_deliveries``.
"""
