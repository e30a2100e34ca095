"""Shared helpers of the benchmarks: environment, targets, and the final JSON line.

Every benchmark ends with :func:`finish`: it prints one JSON line (``bench``, ``ratio``, ``target``,
``met`` and the benchmark's own figures) and exits with :data:`MISSED_EXIT_CODE` when a figure
misses its target, so ``make bench`` can name the benchmarks that missed. A target's limit can be
changed for one run with ``BENCH_TARGET_<NAME>`` (``NAME`` as printed, upper case), e.g.
``BENCH_TARGET_BREAKER=0.01 make bench`` makes the breaker benchmark miss on purpose.
"""

from __future__ import annotations

import json
import operator
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def airflow_env(home: Path | None = None) -> dict[str, str]:
    """Environment for an Airflow process of the project, with a throw-away AIRFLOW_HOME."""
    from devstack.airflow_env import airflow_environment
    from include.settings import database_url, redis_url

    home = home or Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    env = airflow_environment(home, database_url=database_url(), redis_url=redis_url())
    return {**os.environ, **env}


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


#: Exit code of a benchmark that ran but missed a target (an error exits with 1, as Python does).
MISSED_EXIT_CODE = 3
_COMPARISONS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Target:
    """What a figure must be: ``Target("<=", 0.5)`` is met by 0.5 and below."""

    comparison: str
    limit: float

    def __post_init__(self) -> None:
        if self.comparison not in _COMPARISONS:
            raise ValueError(f"target comparison {self.comparison!r} is not one of {sorted(_COMPARISONS)}")

    def met_by(self, value: float) -> bool:
        return _COMPARISONS[self.comparison](value, self.limit)

    def for_run(self, name: str) -> Target:
        """This target, with the limit of ``BENCH_TARGET_<NAME>`` when that is set."""
        variable = f"BENCH_TARGET_{name.upper()}"
        raw = os.environ.get(variable)
        if not raw:
            return self
        try:
            return replace(self, limit=float(raw))
        except ValueError:
            raise ValueError(f"{variable}={raw!r} is not a number") from None

    def __str__(self) -> str:
        return f"{self.comparison} {self.limit:g}"


def finish(
    bench: str,
    ratio: float,
    target: Target,
    *,
    checks: Mapping[str, tuple[float, Target]] | None = None,
    **extra: Any,
) -> NoReturn:
    """Print the benchmark's last line and exit: 0 when every target is met, else :data:`MISSED_EXIT_CODE`.

    :param ratio: the headline figure, against a baseline measured in the same run; ``target`` is its goal.
    :param checks: further figures with targets of their own (``name -> (value, target)``); each is
        reported as ``<name>`` and ``<name>_target``, and overridden by ``BENCH_TARGET_<BENCH>_<NAME>``.
    :param extra: more figures for the JSON line.
    """
    figures = {bench: (ratio, target), **{f"{bench}_{name}": check for name, check in (checks or {}).items()}}
    goals = {name: goal.for_run(name) for name, (_, goal) in figures.items()}
    missed = [
        f"{name} = {value:g} (target {goals[name]})"
        for name, (value, _) in figures.items()
        if not goals[name].met_by(value)
    ]
    line: dict[str, Any] = {"bench": bench, "ratio": round(ratio, 3), "target": str(goals[bench])}
    for name, (value, _) in (checks or {}).items():
        line[name] = round(value, 3)
        line[f"{name}_target"] = str(goals[f"{bench}_{name}"])
    line["met"] = not missed
    if missed:
        print(f"{bench}: missed its target: {'; '.join(missed)}", file=sys.stderr)
    sys.stderr.flush()
    print(json.dumps({**line, **extra}), flush=True)
    sys.exit(MISSED_EXIT_CODE if missed else 0)


# --------------------------------------------------------------------------- a database of its own


def admin_database_url() -> str:
    """The ``postgres`` database of the server in ``DATABASE_URL``, for creating and dropping scratch databases."""
    from include.settings import database_url

    return with_database(database_url(), "postgres")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def create_scratch_database(admin_url: str, prefix: str, fill: Callable[[str], None]) -> str:
    """A new database ``<prefix>_<pid>`` filled by ``fill(url)``; dropped again if filling fails."""
    import psycopg

    name = f"{prefix}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    try:
        fill(url)
    except BaseException:
        drop_database(admin_url, url)
        raise
    return url


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
