"""Circuit-breaker overhead and half-open admission: this project's breaker vs pybreaker on Redis.

Both guard a no-op call against the same Redis, interleaved in the same run. Then 8 processes
call each breaker at once right after its recovery timeout: ours must admit exactly the
configured number of trial calls, pybreaker (CircuitRedisStorage) admits whoever arrives.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import time

from bench.common import Target, finish, print_table

PROCESSES = 8
#: Ours costs at most half of pybreaker per guarded call, and admits exactly the configured trial.
TARGET = Target("<=", 0.5)
HALF_OPEN_TARGET = Target("==", 1)
#: The Airflow connection of the scratch Redis database this benchmark flushes.
CONN_ID = "bench_breaker_redis"


def _redis_url(base: str, db: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(base)._replace(path=f"/{db}"))


def ours(name: str, threshold: int = 3, recovery: float = 0.5):
    """This project's breaker on the connection ``CONN_ID`` (``main`` points it at the scratch database)."""
    from hooks.circuit_breaker import BreakerConfig, BreakerStore, CircuitBreaker

    config = BreakerConfig(failure_threshold=threshold, recovery_timeout=recovery, half_open_max_calls=1)
    return CircuitBreaker("external_api", name, config=config, store=BreakerStore(CONN_ID))


def theirs(url: str, name: str, threshold: int = 3, recovery: float = 0.5):
    import pybreaker
    import redis

    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, redis.Redis.from_url(url), namespace=name)
    return pybreaker.CircuitBreaker(fail_max=threshold, reset_timeout=recovery, state_storage=storage)


def _noop() -> None:
    return None


def _fail() -> None:
    raise ConnectionRefusedError("refused")


def per_call_seconds(call, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call(_noop)
    return (time.perf_counter() - started) / n


def _trip(breaker) -> None:
    import pybreaker

    for _ in range(3):
        with contextlib.suppress(ConnectionRefusedError, pybreaker.CircuitBreakerError):
            breaker.call(_fail)


def _contender(kind: str, url: str, name: str, barrier, results) -> None:  # runs in a child process
    import pybreaker

    from hooks.circuit_breaker import CircuitOpenError

    breaker = ours(name) if kind == "ours" else theirs(url, name)
    if kind == "ours":
        breaker.store.client.ping()  # ours reads its connection lazily: do that before the race starts
    barrier.wait()
    try:
        breaker.call(time.sleep, 0.5)
        results.put(1)
    except (CircuitOpenError, pybreaker.CircuitBreakerError):
        results.put(0)


def half_open_admissions(kind: str, url: str) -> int:
    name = f"bench-half-open-{kind}-{time.monotonic_ns()}"
    breaker = ours(name) if kind == "ours" else theirs(url, name)
    _trip(breaker)
    time.sleep(0.6)  # past the recovery timeout: the breaker may half-open
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [context.Process(target=_contender, args=(kind, url, name, barrier, results)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return sum(results.get(timeout=5) for _ in range(PROCESSES))


def main() -> None:
    import redis

    from devstack.airflow_env import redis_connection
    from include.settings import redis_url

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-db", type=int, default=13, help="scratch Redis DB index (flushed)")
    args = parser.parse_args()
    url = _redis_url(redis_url(), args.redis_db)
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = redis_connection(url)  # inherited by the forked contenders
    scratch = redis.Redis.from_url(url)
    scratch.flushdb()

    our_breaker, their_breaker = ours("bench-overhead-ours"), theirs(url, "bench-overhead-theirs")
    per_call_seconds(our_breaker.call, 200)  # warm up: scripts loaded, connections open
    per_call_seconds(their_breaker.call, 200)
    our_samples, their_samples, bare_samples = [], [], []
    for _ in range(args.rounds):  # interleaved so machine noise hits both alike
        our_samples.append(per_call_seconds(our_breaker.call, args.calls))
        their_samples.append(per_call_seconds(their_breaker.call, args.calls))
        bare_samples.append(per_call_seconds(lambda f: scratch.ping(), args.calls))
    ours_us = statistics.median(our_samples) * 1e6
    theirs_us = statistics.median(their_samples) * 1e6
    ping_us = statistics.median(bare_samples) * 1e6

    our_admitted = half_open_admissions("ours", url)
    their_admitted = half_open_admissions("pybreaker", url)
    scratch.flushdb()

    print_table(
        ["breaker", "guarded no-op call", "half-open admissions (8 processes)"],
        [
            ["this project (Lua, 1 round trip)", f"{ours_us:.0f} us", f"{our_admitted} (configured 1)"],
            ["pybreaker + CircuitRedisStorage", f"{theirs_us:.0f} us", f"{their_admitted}"],
            ["(one Redis PING, for scale)", f"{ping_us:.0f} us", "-"],
        ],
    )
    finish(
        "breaker",
        ours_us / theirs_us,
        TARGET,
        checks={"half_open_admitted": (our_admitted, HALF_OPEN_TARGET)},
        ours_us=round(ours_us, 1),
        pybreaker_us=round(theirs_us, 1),
        redis_ping_us=round(ping_us, 1),
        half_open_admitted_pybreaker=their_admitted,
        half_open_configured=1,
        processes=PROCESSES,
    )


if __name__ == "__main__":
    main()
