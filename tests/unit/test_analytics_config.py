"""Analytics configuration and job schedules: pure logic."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from include.analytics.config import (
    DEFAULT_SCHEDULES,
    JOBS,
    ConfigError,
    config_from_dict,
    decide_job,
    load_config,
    requested_jobs,
    restore_config,
)


def test_defaults_give_every_job_a_schedule():
    config = config_from_dict({})
    assert set(config.schedule) == set(JOBS) == set(DEFAULT_SCHEDULES)
    assert config.catalog.schemas == () and config.materialized_views.lock_timeout_seconds == 30
    assert config.log_cleanup.retention_days == {"analytics_refresh_log": 90, "analytics_query_statistics": 30}


def test_overrides_merge_over_the_defaults_and_survive_a_round_trip():
    config = config_from_dict(
        {
            "schedule": {"catalog": "*/30 * * * *", "log_cleanup": None},
            "catalog": {"schemas": ["sales"], "exact_counts": ["sales.orders"], "exact_count_max_bytes": 0},
            "log_cleanup": {"retention_days": {"analytics_refresh_log": 14}},
        }
    )
    assert config.schedule["catalog"] == "*/30 * * * *" and config.schedule["log_cleanup"] is None
    assert config.schedule["query_statistics"] == DEFAULT_SCHEDULES["query_statistics"]
    assert config.catalog.schemas == ("sales",) and config.catalog.exact_count_max_bytes == 0
    assert config.log_cleanup.retention_days == {"analytics_refresh_log": 14, "analytics_query_statistics": 30}
    assert restore_config(config.as_dict()) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"catalogue": {}}, "unknown section(s) ['catalogue']"),
        ({"catalog": {"schema": ["x"]}}, "catalog: unknown setting(s) ['schema']"),
        ({"catalog": {"schemas": "sales"}}, "catalog.schemas must be a list of names"),
        ({"materialized_views": {"lock_timeout_seconds": -1}}, "materialized_views.lock_timeout_seconds must be"),
        ({"query_statistics": {"top_n": 0}}, "query_statistics.top_n must be an integer >= 1"),
        ({"query_statistics": {"all_databases": "yes"}}, "query_statistics.all_databases must be true or false"),
        ({"log_cleanup": {"retention_days": {"analytics_refresh_log": "90"}}}, "retention_days.analytics_refresh_log"),
        ({"schedule": {"catalog": "every hour"}}, "schedule.catalog must be a cron expression"),
        ({"schedule": {"vacuum": "0 * * * *"}}, "schedule: unknown job(s) ['vacuum']"),
    ],
)
def test_a_bad_value_is_named_with_what_was_expected(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(data)


def test_the_variable_wins_over_the_environment_and_bad_json_is_named(monkeypatch):
    monkeypatch.setenv("ANALYTICS_CONFIG", '{"catalog": {"schemas": ["env"], "exact_count_max_tables": 7}}')
    monkeypatch.setenv("AIRFLOW_VAR_ANALYTICS_CONFIG", '{"catalog": {"schemas": ["variable"]}}')
    config = load_config()
    assert config.catalog.schemas == ("variable",) and config.catalog.exact_count_max_tables == 7

    monkeypatch.setenv("AIRFLOW_VAR_ANALYTICS_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="Airflow Variable analytics_config is not valid JSON"):
        load_config()


NOW = datetime(2026, 5, 4, 13, 15, 20, tzinfo=UTC)


def test_a_job_runs_once_per_cron_slot():
    hourly = "0 * * * *"
    assert decide_job("catalog", hourly, NOW, None).due
    assert decide_job("catalog", hourly, NOW, datetime(2026, 5, 4, 12, 0, 4, tzinfo=UTC)).due
    later = decide_job("catalog", hourly, NOW, datetime(2026, 5, 4, 13, 0, 3, tzinfo=UTC))
    assert not later.due and "next at 2026-05-04 14:00 UTC" in later.reason


def test_requested_jobs_run_whatever_their_schedule_and_only_they_run():
    last = datetime(2026, 5, 4, 13, 0, 3, tzinfo=UTC)
    assert decide_job("catalog", "0 * * * *", NOW, last, requested=("catalog",)).due
    assert decide_job("catalog", None, NOW, last, requested=("catalog",)).due
    other = decide_job("log_cleanup", "* * * * *", NOW, None, requested=("catalog",))
    assert not other.due and "not requested" in other.reason
    off = decide_job("log_cleanup", None, NOW, None)
    assert not off.due and "turned off" in off.reason


def test_the_jobs_parameter_is_checked():
    assert requested_jobs([]) == ()
    assert requested_jobs(["log_cleanup", "catalog"]) == ("catalog", "log_cleanup")
    with pytest.raises(ConfigError, match=r"unknown job\(s\) \['vacuum'\]"):
        requested_jobs(["vacuum"])
