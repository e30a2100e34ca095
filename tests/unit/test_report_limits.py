"""The three time limits of a report run, against a controlled clock."""

from __future__ import annotations

import psycopg
import pytest

from include.reports.limits import RunClock, TimeLimitExceeded, TimeLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _clock(query=300, file=900, run=1800) -> tuple[RunClock, Clock]:
    clock = Clock()
    return RunClock(TimeLimits(query, file, run), clock=clock), clock


def test_the_statement_timeout_is_the_query_limit_unless_the_run_has_less_left():
    run, clock = _clock(query=300, run=1000)
    assert run.statement_timeout() == 300
    clock.now += 800
    assert run.statement_timeout() == 200
    clock.now += 250
    with pytest.raises(TimeLimitExceeded, match="the run time limit was exceeded") as raised:
        run.statement_timeout()
    assert raised.value.limit == "run" and raised.value.setting == "run_timeout_seconds"


def test_a_statement_timeout_is_named_the_query_limit_or_the_run_limit():
    timeout = psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
    run, clock = _clock(query=300, run=1000)
    clock.now += 301
    exceeded = run.query_timed_out(timeout)
    assert exceeded.limit == "query" and "statement_timeout_seconds" in str(exceeded)
    assert "the query time limit was exceeded: the report's SQL ran longer than its statement timeout" in str(exceeded)

    run, clock = _clock(query=300, run=1000)
    clock.now += 900  # the run had only 100 s left when the query started
    run.statement_timeout()
    clock.now += 101
    assert run.query_timed_out(timeout).limit == "run"

    assert run.query_timed_out(psycopg.errors.QueryCanceled("canceling statement due to user request")) is None
    assert run.query_timed_out(ValueError("statement timeout")) is None


def test_the_file_limit_counts_from_the_end_of_the_query():
    run, clock = _clock(query=300, file=60, run=1800)
    clock.now += 250  # the query's time does not count against the file
    run.start_file()
    clock.now += 59
    run.check_file("10 rows")
    clock.now += 2
    with pytest.raises(TimeLimitExceeded) as raised:
        run.check_file("5,000 of 9,000 rows (sheet 1)")
    assert raised.value.limit == "file"
    assert str(raised.value) == (
        "the file time limit was exceeded: writing the file took longer than allowed after 5,000 of 9,000 rows"
        " (sheet 1) (limit 60 s, file_timeout_seconds); use csv.gz for reports this large, or raise the"
        " report's file_timeout_seconds"
    )
    assert raised.value.describe() == str(raised.value)  # no "the query failed" in front


def test_the_run_limit_bounds_the_file_too():
    run, clock = _clock(query=300, file=900, run=400)
    clock.now += 100
    run.start_file()
    clock.now += 301
    with pytest.raises(TimeLimitExceeded) as raised:
        run.check_file("writing")
    assert raised.value.limit == "run"
