"""The single definition of the five categories and the DAG factory built on it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.categories import CATEGORIES, PLATFORM_START_DATE, get_category, platform_dag


def test_categories_reproduce_the_old_queues():
    assert list(CATEGORIES) == ["analytics", "dbt", "alerts", "reports", "monitoring"]
    for category in CATEGORIES.values():
        assert category.pool == category.queue == category.name
        assert timedelta(seconds=300) <= category.max_retry_delay <= timedelta(seconds=600)
        assert category.retries >= 1 and category.retry_exponential_backoff > 1


def test_unknown_category_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown task category 'reporting'.*'reports'"):
        get_category("reporting")


def test_platform_dag_applies_category_defaults_and_overrides():
    dag = platform_dag(
        dag_id="example",
        category="alerts",
        schedule=None,
        doc_md="doc",
        tags=["ad-hoc"],
        default_args={"retries": 7},
    )
    assert dag.start_date == PLATFORM_START_DATE and dag.catchup is False and dag.max_active_runs == 1
    assert sorted(dag.tags) == ["ad-hoc", "alerts", "platform"]
    assert dag.default_args["pool"] == "alerts" and dag.default_args["queue"] == "alerts"
    assert dag.default_args["retries"] == 7
    assert dag.default_args["max_retry_delay"] == CATEGORIES["alerts"].max_retry_delay
