"""Run the benchmarks (``make bench``): ``python -m bench [NAME ...]``, every one by default.

Each runs in a process of its own and prints its table and JSON line. The run fails when any
benchmark missed its target or could not run, and ends by naming them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from bench.common import MISSED_EXIT_CODE, PROJECT_ROOT

BENCH_DIR = Path(__file__).resolve().parent


def benchmarks() -> list[str]:
    """The benchmark modules of bench/, by name."""
    return sorted(p.stem for p in BENCH_DIR.glob("[a-z]*.py") if p.stem != "common")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all of {benchmarks()})")
    names = parser.parse_args(argv).names or benchmarks()
    unknown = sorted(set(names) - set(benchmarks()))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; there are {', '.join(benchmarks())}")
    missed, failed = [], []
    for name in names:
        print(f"== bench/{name}.py", flush=True)
        status = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=PROJECT_ROOT).returncode
        if status == MISSED_EXIT_CODE:
            missed.append(name)
        elif status != 0:
            failed.append(name)
    if missed:
        print(f"missed their target: {', '.join(missed)}")
    if failed:
        print(f"failed to run: {', '.join(failed)}")
    if not missed and not failed:
        print(f"every benchmark met its target: {', '.join(names)}")
    return 1 if missed or failed else 0


if __name__ == "__main__":
    sys.exit(main())
