"""Numbers from the environment: defaults when unset, an error naming the variable when malformed."""

from __future__ import annotations

import pytest

from include.settings import env_number


def test_env_number_reads_converts_and_names_a_bad_value(monkeypatch):
    monkeypatch.delenv("PLATFORM_TEST_NUMBER", raising=False)
    assert env_number("PLATFORM_TEST_NUMBER", 5, int) == 5
    monkeypatch.setenv("PLATFORM_TEST_NUMBER", "")
    assert env_number("PLATFORM_TEST_NUMBER", 2.5) == 2.5
    monkeypatch.setenv("PLATFORM_TEST_NUMBER", "7")
    assert env_number("PLATFORM_TEST_NUMBER", 5, int) == 7
    monkeypatch.setenv("PLATFORM_TEST_NUMBER", "1.5")
    with pytest.raises(ValueError, match=r"PLATFORM_TEST_NUMBER='1.5' is not an integer"):
        env_number("PLATFORM_TEST_NUMBER", 5, int)
    monkeypatch.setenv("PLATFORM_TEST_NUMBER", "soon")
    with pytest.raises(ValueError, match=r"PLATFORM_TEST_NUMBER='soon' is not a number"):
        env_number("PLATFORM_TEST_NUMBER", 1.0)
