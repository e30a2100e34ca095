"""The Redis circuit breaker against a real Redis: every transition, concurrency, Redis outages."""

from __future__ import annotations

import logging
import multiprocessing
import time

import pytest

from devstack.airflow_env import redis_connection
from hooks.circuit_breaker import (
    DEFAULT_BREAKERS,
    BreakerConfig,
    BreakerStore,
    CircuitBreaker,
    CircuitOpenError,
    all_statuses,
    breaker_config,
    reset_breakers,
)

FAST = BreakerConfig(failure_threshold=3, recovery_timeout=0.4, half_open_max_calls=1, trial_lease=5)


class Refused(ConnectionError):
    pass


def _fail() -> None:
    raise Refused("connection refused")


def _fail_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Refused):
            breaker.call(_fail)


@pytest.fixture
def store(test_env) -> BreakerStore:
    return BreakerStore()  # connection circuit_breaker_redis: the session's Redis database


def _redis_connection(monkeypatch, conn_id: str, url: str) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", redis_connection(url))
    return conn_id


def make(store: BreakerStore, target: str = "db-1", config: BreakerConfig = FAST) -> CircuitBreaker:
    return CircuitBreaker("database", target, config=config, store=store)


def test_closed_breaker_lets_calls_through_and_counts_consecutive_failures(store):
    breaker = make(store)
    assert breaker.call(lambda: 42) == 42
    _fail_times(breaker, 2)
    assert breaker.status().state == "closed" and breaker.status().failures == 2
    breaker.call(lambda: None)  # a success resets the consecutive count
    assert breaker.status().failures == 0
    _fail_times(breaker, 2)
    assert breaker.status().state == "closed"


def test_threshold_failures_open_the_breaker_and_refuse_calls_with_a_reschedule_date(store):
    breaker = make(store)
    _fail_times(breaker, 3)
    status = breaker.status()
    assert status.state == "open" and status.opened_at is not None
    assert "Refused: connection refused" in status.last_error
    called = []
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(lambda: called.append(1))
    assert called == []
    assert 0 < refused.value.retry_after <= FAST.recovery_timeout
    assert refused.value.reschedule_date is not None
    assert "'database' for target 'db-1' is open" in str(refused.value)


def test_after_recovery_timeout_one_trial_passes_and_success_closes(store):
    breaker = make(store)
    _fail_times(breaker, 3)
    time.sleep(FAST.recovery_timeout + 0.05)
    assert breaker.call(lambda: "trial") == "trial"
    status = breaker.status()
    assert status.state == "closed" and status.failures == 0 and status.opened_at is None


def test_a_failed_trial_reopens_the_breaker_for_a_full_recovery_timeout(store):
    breaker = make(store)
    _fail_times(breaker, 3)
    first_opened = breaker.status().opened_at
    time.sleep(FAST.recovery_timeout + 0.05)
    _fail_times(breaker, 1)  # the half-open trial fails
    status = breaker.status()
    assert status.state == "open" and status.opened_at > first_opened
    with pytest.raises(CircuitOpenError) as refused:
        breaker.call(lambda: None)
    assert refused.value.retry_after > FAST.recovery_timeout / 2


def test_half_open_refuses_further_callers_while_the_trial_is_running(store):
    breaker = make(store)
    other_caller = make(store)  # another process would build its own instance
    _fail_times(breaker, 3)
    time.sleep(FAST.recovery_timeout + 0.05)
    with breaker.guard():  # the trial call is in flight
        with pytest.raises(CircuitOpenError) as refused:
            other_caller.call(lambda: None)
        assert refused.value.state == "half_open"
    assert breaker.status().state == "closed"


def test_a_trial_whose_caller_died_frees_its_permit_after_the_lease(store):
    config = BreakerConfig(failure_threshold=1, recovery_timeout=0.2, trial_lease=0.3)
    breaker = make(store, config=config)
    _fail_times(breaker, 1)
    time.sleep(0.25)
    stuck = breaker.guard()
    stuck.__enter__()  # admitted as the trial, never reports back (its worker was killed)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    time.sleep(0.35)
    assert breaker.call(lambda: "second trial") == "second trial"
    assert breaker.status().state == "closed"


def test_breakers_are_independent_per_target_and_per_name(store):
    bad, good = make(store, "bad-db"), make(store, "good-db")
    api = CircuitBreaker("external_api", "bad-db", config=FAST, store=store)
    _fail_times(bad, 3)
    with pytest.raises(CircuitOpenError):
        bad.call(lambda: None)
    assert good.call(lambda: "ok") == "ok"
    assert api.call(lambda: "ok") == "ok"
    states = {(s.breaker, s.target): s.state for s in all_statuses(store)}
    assert states == {
        ("database", "bad-db"): "open",
        ("database", "good-db"): "closed",
        ("external_api", "bad-db"): "closed",
    }


def test_errors_that_are_not_dependency_failures_pass_through_without_counting(store):
    breaker = make(store)
    for _ in range(5):
        with pytest.raises(ValueError):
            breaker.call(lambda: (_ for _ in ()).throw(ValueError("bad input")))
    assert breaker.status().state == "closed" and breaker.status().failures == 0


def test_a_late_failure_from_before_the_trip_does_not_count_twice(store):
    breaker = make(store)
    slow = breaker.guard()
    slow.__enter__()  # admitted while closed
    _fail_times(breaker, 3)  # meanwhile the breaker trips
    time.sleep(FAST.recovery_timeout + 0.05)
    assert breaker.call(lambda: "trial") == "trial"  # half-open -> closed
    late = Refused("late")
    assert slow.__exit__(Refused, late, None) is False  # the stale call finally fails (and propagates)
    assert breaker.status().state == "closed" and breaker.status().failures == 0


def test_reset_forces_closed_and_is_listed(store):
    breaker = make(store, "ops-db")
    _fail_times(breaker, 3)
    assert reset_breakers("database", store=store) == ["ops-db"]
    assert breaker.status().state == "closed"
    assert breaker.call(lambda: "again") == "again"


def test_configuration_is_read_at_run_time_from_the_environment(monkeypatch):
    import hooks.circuit_breaker as module

    assert breaker_config("database") == DEFAULT_BREAKERS["database"]
    assert (DEFAULT_BREAKERS["database"].failure_threshold, DEFAULT_BREAKERS["database"].recovery_timeout) == (5, 60)
    assert (DEFAULT_BREAKERS["dbt"].failure_threshold, DEFAULT_BREAKERS["dbt"].recovery_timeout) == (3, 120)
    assert (DEFAULT_BREAKERS["external_api"].failure_threshold, DEFAULT_BREAKERS["external_api"].recovery_timeout) == (
        3,
        120,
    )
    monkeypatch.setenv("CIRCUIT_BREAKERS", '{"database": {"failure_threshold": 2, "recovery_timeout": 5}}')
    monkeypatch.setattr(module, "_config_cache", {})
    config = breaker_config("database")
    assert (config.failure_threshold, config.recovery_timeout) == (2, 5)
    assert breaker_config("dbt") == DEFAULT_BREAKERS["dbt"]


def test_transitions_rejections_and_calls_are_counted_in_metrics(store, statsd):
    breaker = make(store, "metered-db")
    breaker.call(lambda: None)
    _fail_times(breaker, 3)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    statsd.wait_for("airflow.platform.breaker.transition.database.metered-db.open")
    statsd.wait_for("airflow.platform.breaker.rejected.database.metered-db")
    statsd.wait_for("airflow.platform.breaker.calls.database.metered-db.success")
    statsd.wait_for("airflow.platform.breaker.calls.database.metered-db.failure")


# --------------------------------------------------------------------------- Redis unavailable


def test_redis_down_fails_open_with_one_warning_and_a_metric(caplog, statsd, monkeypatch):
    store = BreakerStore(_redis_connection(monkeypatch, "redis_down", "redis://127.0.0.1:1/0"))  # port 1: nothing
    breaker = CircuitBreaker("database", "db-x", config=FAST, store=store)
    with caplog.at_level(logging.WARNING, logger="hooks.circuit_breaker"):
        assert [breaker.call(lambda i=i: i) for i in range(5)] == [0, 1, 2, 3, 4]
        _fail_times(breaker, 5)  # failures cannot be recorded: still no refusal
        assert breaker.call(lambda: "through") == "through"
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1
    statsd.wait_for("airflow.platform.breaker.store_unavailable")


def test_redis_stopped_mid_flight_fails_open(test_env, monkeypatch):
    """A real Redis server that goes away: the breaker keeps letting calls through."""
    import shutil
    import subprocess

    import redis

    from tests.support.servers import free_port
    from tests.support.waiting import wait_until

    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        store = BreakerStore(_redis_connection(monkeypatch, "redis_stopping", f"redis://127.0.0.1:{port}/0"))
        breaker = CircuitBreaker("database", "db-y", config=FAST, store=store)
        wait_until(store.client.ping, what="the test redis-server", timeout=10, ignore=(redis.RedisError,))
        assert breaker.call(lambda: "guarded") == "guarded"
        assert breaker.status().state == "closed"
    finally:
        server.terminate()
        server.wait(10)
    assert breaker.call(lambda: "unguarded") == "unguarded"


# --------------------------------------------------------------------------- many processes


def _trial_caller(max_calls: int, barrier, results) -> None:  # runs in a child process
    store = BreakerStore()
    store.client.ping()  # the connection read and opened before the race, so every caller arrives at once
    config = BreakerConfig(failure_threshold=1, recovery_timeout=0.3, half_open_max_calls=max_calls, trial_lease=30)
    breaker = CircuitBreaker("external_api", "contended-host", config=config, store=store)
    barrier.wait()
    try:
        with breaker.guard():
            time.sleep(0.5)  # the trial call takes a while, so everyone arrives while it runs
        results.put("passed")
    except CircuitOpenError:
        results.put("refused")


@pytest.mark.parametrize("max_calls", [1, 2])
def test_half_open_admits_exactly_the_configured_number_of_trials_across_processes(test_env, store, max_calls):
    config = BreakerConfig(failure_threshold=1, recovery_timeout=0.3, half_open_max_calls=max_calls, trial_lease=30)
    breaker = CircuitBreaker("external_api", "contended-host", config=config, store=store)
    _fail_times(breaker, 1)
    processes = 8
    context = multiprocessing.get_context("fork")  # children inherit the imports: they start at once
    barrier, results = context.Barrier(processes), context.Queue()
    time.sleep(0.35)  # the breaker may half-open now; the first caller to arrive takes the trial
    workers = [context.Process(target=_trial_caller, args=(max_calls, barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    outcomes = [results.get(timeout=5) for _ in range(processes)]
    assert outcomes.count("passed") == max_calls
    assert outcomes.count("refused") == processes - max_calls
    assert breaker.status().state == "closed"
