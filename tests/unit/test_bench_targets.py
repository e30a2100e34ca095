"""Benchmarks fail when they miss their target (bench/common.py: Target, finish)."""

from __future__ import annotations

import json

import pytest

from bench.common import MISSED_EXIT_CODE, Target, finish


def test_a_target_is_met_at_its_limit_and_on_its_side_only():
    assert Target("<=", 0.5).met_by(0.5) and not Target("<=", 0.5).met_by(0.51)
    assert Target(">=", 10).met_by(12) and not Target(">=", 10).met_by(9.9)
    assert Target("==", 1).met_by(1) and not Target("==", 1).met_by(8)
    assert str(Target(">=", 0.8)) == ">= 0.8"
    with pytest.raises(ValueError, match="'<'"):
        Target("<", 1)


def _finish(capsys, *args, **kwargs) -> tuple[int, dict, str]:
    with pytest.raises(SystemExit) as exited:
        finish(*args, **kwargs)
    out, err = capsys.readouterr()
    return exited.value.code, json.loads(out.splitlines()[-1]), err


def test_a_met_target_exits_0_with_the_json_line_last(capsys):
    code, line, err = _finish(capsys, "demo", 0.3, Target("<=", 0.5), ours_us=12.0)
    assert code == 0
    assert line == {"bench": "demo", "ratio": 0.3, "target": "<= 0.5", "met": True, "ours_us": 12.0}
    assert err == ""


def test_a_missed_check_fails_the_benchmark_and_is_named(capsys):
    checks = {"half_open_admitted": (8, Target("==", 1))}
    code, line, err = _finish(capsys, "demo", 0.3, Target("<=", 0.5), checks=checks)
    assert code == MISSED_EXIT_CODE
    assert (line["met"], line["half_open_admitted"], line["half_open_admitted_target"]) == (False, 8, "== 1")
    assert "demo_half_open_admitted = 8 (target == 1)" in err


def test_the_environment_moves_a_limit_for_one_run(capsys, monkeypatch):
    monkeypatch.setenv("BENCH_TARGET_DEMO", "0.1")
    code, line, err = _finish(capsys, "demo", 0.3, Target("<=", 0.5))
    assert (code, line["target"], line["met"]) == (MISSED_EXIT_CODE, "<= 0.1", False)
    assert "demo = 0.3 (target <= 0.1)" in err

    monkeypatch.setenv("BENCH_TARGET_DEMO", "soon")
    with pytest.raises(ValueError, match="BENCH_TARGET_DEMO='soon' is not a number"):
        finish("demo", 0.3, Target("<=", 0.5))
