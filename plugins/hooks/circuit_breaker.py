"""Circuit breakers whose state lives in Redis, shared by every worker process and machine.

A breaker is identified by a *name* (the dependency kind: ``database``, ``dbt``, ``external_api``)
and a *target* (one database connection, one webhook host), so one bad endpoint never blocks the
others. States: closed -> open after ``failure_threshold`` consecutive failures -> half-open once
``recovery_timeout`` has passed, admitting at most ``half_open_max_calls`` trial calls cluster-wide
-> closed on a trial success, open again on a trial failure. Every transition is one Lua script
(``lua/*.lua``) run atomically in Redis, timed by the Redis server's clock. A success on the closed
path costs one round trip.

A call refused by an open breaker raises :class:`CircuitOpenError`, an ``AirflowRescheduleException``:
the task is rescheduled to the moment the breaker may half-open, without using a retry and without
holding a worker or pool slot. If Redis itself is unreachable the breaker fails open: the call
goes through, a warning is logged at most once a minute, and ``breaker.store_unavailable`` counts it.

The Redis is the Airflow connection ``circuit_breaker_redis`` (type ``redis``: host, port, login,
password, extra ``{"db": N}``), read through the redis provider's ``RedisHook``; ``make run`` and the
tests fill it in from ``REDIS_URL``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowRescheduleException

from observability import metrics
from observability.redaction import redact

log = logging.getLogger(__name__)

T = TypeVar("T")
KEY_PREFIX = "platform:cb"
INDEX_KEY = f"{KEY_PREFIX}:index"
CONFIG_VARIABLE = "circuit_breakers"
CONFIG_ENV = "CIRCUIT_BREAKERS"
#: The Airflow connection of the Redis holding every breaker's state.
REDIS_CONN_ID = "circuit_breaker_redis"
#: Client settings of the store: a breaker must never wait long on its own store.
_CLIENT_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 1.0, "decode_responses": True}
_LUA_DIR = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class BreakerConfig:
    """How a breaker trips and recovers. Times are in seconds."""

    failure_threshold: int
    recovery_timeout: float
    half_open_max_calls: int = 1
    #: How long a half-open trial holds its permit if its caller dies without reporting back.
    trial_lease: float = 300.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_max_calls < 1:
            raise ValueError("failure_threshold and half_open_max_calls must be at least 1")
        if self.recovery_timeout <= 0 or self.trial_lease <= 0:
            raise ValueError("recovery_timeout and trial_lease must be positive")


#: The old worker's breakers: database 5 failures / 60 s, dbt 3 / 120 s, external API 3 / 120 s.
DEFAULT_BREAKERS: dict[str, BreakerConfig] = {
    "database": BreakerConfig(failure_threshold=5, recovery_timeout=60, trial_lease=120),
    "dbt": BreakerConfig(failure_threshold=3, recovery_timeout=120, trial_lease=3600),
    "external_api": BreakerConfig(failure_threshold=3, recovery_timeout=120, trial_lease=120),
}


class CircuitOpenError(AirflowRescheduleException):
    """The breaker refused the call; Airflow reschedules the task to ``reschedule_date``."""

    def __init__(self, breaker: str, target: str, state: str, retry_after: float) -> None:
        reschedule_date = datetime.now(UTC) + timedelta(seconds=max(retry_after, 1.0))
        super().__init__(reschedule_date)
        self.breaker, self.target, self.state, self.retry_after = breaker, target, state, retry_after

    def __str__(self) -> str:
        return (
            f"circuit breaker {self.breaker!r} for target {self.target!r} is {self.state}; "
            f"retry after {self.retry_after:.1f}s (at {self.reschedule_date:%Y-%m-%d %H:%M:%S} UTC)"
        )


# ----------------------------------------------------------------------------- configuration

_config_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_CONFIG_TTL = 30.0


def _config_overrides() -> dict[str, Any]:
    """Overrides from the ``circuit_breakers`` Airflow Variable, else the CIRCUIT_BREAKERS env (JSON)."""
    cached = _config_cache.get("overrides")
    if cached and time.monotonic() - cached[0] < _CONFIG_TTL:
        return cached[1]
    raw: Any = None
    try:
        from airflow.sdk import Variable

        raw = Variable.get(CONFIG_VARIABLE, default=None)
    except Exception:  # outside a task there may be no way to reach Variables
        raw = None
    if raw in (None, ""):
        raw = os.environ.get(CONFIG_ENV) or "{}"
    try:
        overrides = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError) as error:
        log.warning("ignoring invalid circuit breaker configuration (%s): %s", CONFIG_VARIABLE, error)
        overrides = {}
    _config_cache["overrides"] = (time.monotonic(), overrides)
    return overrides


def breaker_config(name: str) -> BreakerConfig:
    """The configuration of breaker ``name``: defaults, overridden at run time by configuration."""
    base = DEFAULT_BREAKERS.get(name, DEFAULT_BREAKERS["external_api"])
    override = _config_overrides().get(name) or {}
    fields = set(BreakerConfig.__dataclass_fields__)
    unknown = set(override) - fields
    if unknown:
        log.warning("circuit breaker %r: ignoring unknown settings %s", name, sorted(unknown))
    return replace(base, **{k: v for k, v in override.items() if k in fields})


# ----------------------------------------------------------------------------- Redis store


def redis_client(redis_conn_id: str = REDIS_CONN_ID):
    """A client of the Redis in Airflow connection ``redis_conn_id`` (through ``RedisHook``), with the store's timeouts.

    Raises ``redis.ConnectionError`` naming the connection when it is not defined or not usable.
    """
    import redis
    from airflow.providers.redis.hooks.redis import RedisHook

    try:
        client = RedisHook(redis_conn_id=redis_conn_id).get_conn()
    except Exception as error:  # not defined (AirflowNotFoundException), or invalid fields
        raise redis.ConnectionError(f"Redis connection {redis_conn_id!r}: {type(error).__name__}: {error}") from error
    if not isinstance(client, redis.Redis):
        raise redis.ConnectionError(
            f"Redis connection {redis_conn_id!r} is a cluster: the breaker store needs one Redis server "
            "(each transition is one script over keys of several hash slots)"
        )
    pool = client.connection_pool
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, **{**pool.connection_kwargs, **_CLIENT_OPTIONS}
        )
    )


class BreakerStore:
    """Redis access for breakers: the Lua scripts, and failing open when Redis is unreachable.

    :param redis_conn_id: the Airflow connection of the Redis; read when the store is first used.
    """

    WARN_INTERVAL = 60.0
    #: After a Redis error, skip Redis for this long so an outage costs no time per call.
    RETRY_INTERVAL = 5.0

    def __init__(self, redis_conn_id: str = REDIS_CONN_ID) -> None:
        self.redis_conn_id = redis_conn_id
        self._client = None
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._read_conn = None
        self._read_pid = 0
        self._down_until = 0.0
        self._last_warning = 0.0

    @property
    def client(self):
        """The Redis client, made from the connection on first use (``redis.ConnectionError`` if it cannot be)."""
        return self._connected()[0]

    def _connected(self) -> tuple[Any, dict[str, Any]]:
        """The client and its registered scripts (made on first use; again after a failed attempt)."""
        if self._client is None:
            client = redis_client(self.redis_conn_id)
            self._scripts = {
                name: client.register_script((_LUA_DIR / f"{name}.lua").read_text())
                for name in ("acquire", "record_success", "record_failure", "reset")
            }
            self._client = client
        return self._client, self._scripts

    def run(self, script: str, keys: list[str], args: list[Any]) -> Any | None:
        """Run a script; ``None`` when Redis is unavailable (the caller then fails open)."""
        return self._call(lambda: self._run_script(script, keys, args))

    def _run_script(self, script: str, keys: list[str], args: list[Any]) -> Any:
        _, scripts = self._connected()
        return scripts[script](keys=keys, args=args)

    def read_state(self, key: str) -> list[str | None] | None:
        """``[state, generation, failures]`` of a breaker in one plain read; ``None`` if Redis is down."""
        return self._call(lambda: self._hot_read(key))

    def _hot_read(self, key: str) -> list[str | None]:
        """HMGET on a connection of this store's own: the hot path of every guarded call.

        Skipping the pool's checkout/release halves the client-side cost of the read. The connection
        is per process (dropped, not closed, in a forked child) and used under a lock.
        """
        with self._read_lock:
            if self._read_conn is None or self._read_pid != os.getpid():
                pool = self.client.connection_pool
                self._read_conn = pool.connection_class(**pool.connection_kwargs)
                self._read_pid = os.getpid()
            try:
                self._read_conn.send_command("HMGET", key, "state", "generation", "failures")
                return self._read_conn.read_response()
            except BaseException:
                self._read_conn.disconnect()
                self._read_conn = None
                raise

    def _call(self, command: Callable[[], Any]) -> Any | None:
        import redis

        if time.monotonic() < self._down_until:
            metrics.incr("breaker.store_unavailable")
            return None
        try:
            return command()
        except redis.RedisError as error:
            self._down_until = time.monotonic() + self.RETRY_INTERVAL
            metrics.incr("breaker.store_unavailable")
            with self._lock:
                now = time.monotonic()
                if now - self._last_warning >= self.WARN_INTERVAL:
                    self._last_warning = now
                    log.warning(
                        "circuit breaker store (connection %r) unavailable (%s); calls go through unguarded",
                        self.redis_conn_id,
                        error,
                    )
            return None


@cache
def default_store() -> BreakerStore:
    """The store of connection ``circuit_breaker_redis`` (one per process)."""
    return BreakerStore()


def _keys(name: str, target: str) -> list[str]:
    base = f"{KEY_PREFIX}:{{{name}|{target}}}"
    return [base, f"{base}:trials", INDEX_KEY]


# ----------------------------------------------------------------------------- the breaker


def is_transient_error(error: BaseException) -> bool:
    """Default classification: connection problems and timeouts count against the dependency."""
    return isinstance(error, (ConnectionError, TimeoutError))


class CircuitBreaker:
    """One breaker for one target. Cheap to create; all state is in Redis.

    :param name: breaker name (``database``, ``dbt``, ``external_api``); selects the configuration.
    :param target: what is guarded (a connection id, a host); breakers are independent per target.
    :param is_failure: whether an exception raised by the guarded call counts as a failure of the
        dependency. Exceptions that do not count (a user's SQL error, an HTTP 404) pass through
        and, in half-open, count as proof that the dependency answers.
    """

    def __init__(
        self,
        name: str,
        target: str,
        *,
        config: BreakerConfig | None = None,
        store: BreakerStore | None = None,
        is_failure: Callable[[BaseException], bool] = is_transient_error,
    ) -> None:
        self.name, self.target = name, target
        self.config = config or breaker_config(name)
        self.store = store or default_store()
        self.is_failure = is_failure
        self._keys = _keys(name, target)
        self._member = f"{name}|{target}"

    def _labels(self) -> dict[str, str]:
        return {"breaker": self.name, "target": self.target}

    def _transition(self, to_state: str) -> None:
        log.warning("circuit breaker %s/%s -> %s", self.name, self.target, to_state)
        metrics.incr("breaker.transition", **self._labels(), state=to_state)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the body through the breaker; raise :class:`CircuitOpenError` when refused."""
        admitted = self._admit()
        if admitted is None:  # Redis unavailable: fail open
            yield
            return
        decision, token, generation, failures = admitted
        try:
            yield
        except BaseException as error:
            if self.is_failure(error):
                self._record_failure(token, generation, error)
            else:  # the dependency answered; the error is the caller's
                self._record_success(token, generation, failures, decision, "not_counted")
            raise
        else:
            self._record_success(token, generation, failures, decision, "success")

    def _admit(self) -> tuple[str, str, int, int] | None:
        """``(decision, token, generation, failures)``; raise when refused; ``None`` if Redis is down.

        A closed breaker is recognised by one plain read (the common, cheap path). Every other state,
        and the first use of a breaker, goes through the atomic ``acquire`` script.
        """
        fields = self.store.read_state(self._keys[0])
        if fields is None:
            return None
        state, generation, failures = fields
        if state == "closed":
            return "allow", "", int(generation or 0), int(failures or 0)
        config, token = self.config, uuid.uuid4().hex
        result = self.store.run(
            "acquire",
            self._keys,
            [
                int(config.recovery_timeout * 1000),
                config.half_open_max_calls,
                int(config.trial_lease * 1000),
                token,
                self._member,
            ],
        )
        if result is None:
            return None
        decision, state, generation, failures, retry_after_ms, transition = result
        if transition:
            self._transition(transition)
        if decision == "reject":
            metrics.incr("breaker.rejected", **self._labels())
            raise CircuitOpenError(self.name, self.target, state, int(retry_after_ms) / 1000)
        return decision, token, int(generation), int(failures)

    def _record_failure(self, token: str, generation: int, error: BaseException) -> None:
        metrics.incr("breaker.calls", **self._labels(), outcome="failure")
        summary = redact(f"{type(error).__name__}: {error}")[:500]  # shown on the Circuit breakers page
        result = self.store.run(
            "record_failure",
            self._keys,
            [token, generation, self.config.failure_threshold, summary, self._member],
        )
        if result:
            self._transition(result)

    def _record_success(self, token: str, generation: int, failures: int, decision: str, outcome: str) -> None:
        metrics.incr("breaker.calls", **self._labels(), outcome=outcome)
        if decision == "allow" and failures == 0:
            return  # closed and clean: nothing to write, one round trip in all
        result = self.store.run("record_success", self._keys[:2], [token, generation])
        if result:
            self._transition(result)

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(*args, **kwargs)`` through the breaker."""
        with self.guard():
            return func(*args, **kwargs)

    def reset(self) -> str:
        """Force the breaker closed; return the state it was in."""
        previous = self.store.run("reset", self._keys[:2], [])
        self.store.client.sadd(INDEX_KEY, self._member)
        if previous and previous != "closed":
            self._transition("closed")
        return previous or "unknown"

    def status(self) -> BreakerStatus:
        return read_status(self.store, self.name, self.target)


@dataclass(frozen=True)
class BreakerStatus:
    """What an operator sees for one breaker and target."""

    breaker: str
    target: str
    state: str
    failures: int
    opened_at: datetime | None
    retry_after: float | None
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["opened_at"] = self.opened_at.isoformat() if self.opened_at else None
        return data


def read_status(store: BreakerStore, name: str, target: str) -> BreakerStatus:
    """The current state of one breaker (half-open is reported as such once its timeout passed)."""
    key = _keys(name, target)[0]
    pipe = store.client.pipeline()
    pipe.hgetall(key)
    pipe.time()
    data, (seconds, micros) = pipe.execute()
    now_ms = seconds * 1000 + micros // 1000
    state = data.get("state", "closed")
    opened_ms = int(data["opened_at"]) if data.get("opened_at") else None
    retry_after = None
    if state == "open" and opened_ms is not None:
        recovery_ms = breaker_config(name).recovery_timeout * 1000
        retry_after = max(0.0, (opened_ms + recovery_ms - now_ms) / 1000)
    return BreakerStatus(
        breaker=name,
        target=target,
        state=state,
        failures=int(data.get("failures", 0)),
        opened_at=datetime.fromtimestamp(opened_ms / 1000, UTC) if opened_ms else None,
        retry_after=retry_after,
        last_error=data.get("last_error"),
    )


def all_statuses(store: BreakerStore | None = None) -> list[BreakerStatus]:
    """Every breaker and target that has been used (recorded a failure or was reset)."""
    store = store or default_store()
    members = sorted(store.client.smembers(INDEX_KEY))
    return [read_status(store, *member.split("|", 1)) for member in members]


def reset_breakers(name: str, target: str | None = None, store: BreakerStore | None = None) -> list[str]:
    """Reset breaker ``name`` for ``target`` (or every target it has); return the targets reset."""
    store = store or default_store()
    targets = [target] if target else [s.target for s in all_statuses(store) if s.breaker == name]
    for each in targets:
        CircuitBreaker(name, each, store=store).reset()
    return targets
