"""Polling for something the test is waiting on (a server to start, a run to finish)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` until it returns something truthy and return that.

    Exceptions of the ``ignore`` types count as "not yet". After ``timeout`` seconds a
    ``TimeoutError`` says what was awaited: a harness failure, not a measurement.
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(*ignore):
            result = condition()
            if result:
                return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(interval)
