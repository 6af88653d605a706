"""Typed, validated configuration of one dj_queue backend alias.

``TASKS[alias]["OPTIONS"]`` is parsed into frozen dataclasses once. Every error
names the offending key by its full path and says what would be accepted, so a
bad configuration refuses to start instead of misbehaving later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from .cron import check_schedule, time_zone
from .exceptions import ConfigurationError
from .retries import RetryPolicy, seconds, whole_attempts

Mode = Literal["fork", "async"]
MODES: tuple[Mode, ...] = ("fork", "async")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    queues: tuple[str, ...] = ("*",)
    threads: int = 3
    processes: int = 1
    polling_interval: float = 0.1
    # Claimed jobs held beyond the busy threads, so a thread that finishes one
    # starts the next without a round trip. Only jobs expected to start soon
    # are held (see Worker._buffer_allowed).
    prefetch: int = 32
    # Seconds the outcomes of finished jobs are gathered before they are
    # recorded in one transaction; 0: each job's outcome in its own.
    completion_window: float = 0.005


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    batch_size: int = 500
    polling_interval: float = 1.0
    concurrency_maintenance: bool = True
    concurrency_maintenance_interval: float = 600.0


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    dynamic_tasks_enabled: bool = False
    polling_interval: float = 5.0
    # The IANA zone cron schedules are read in; None: settings.TIME_ZONE.
    time_zone: str | None = None


@dataclass(frozen=True, slots=True)
class RetriesConfig:
    """``OPTIONS["retries"]``: the retry policy of tasks that declare none."""

    max_attempts: int = 1
    delay: float = 1.0
    max_delay: float = 3600.0
    jitter: bool = True


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``OPTIONS["metrics"]``: who may read ``metrics`` and ``stats.json``
    besides staff, and how long one reading of the figures is served."""

    # A scraper sends ``Authorization: Bearer <token>``; None: staff sessions only.
    token: str | None = field(default=None, repr=False)
    # Seconds a reading is reused, so that many scrapers cost one set of queries.
    cache_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class RecurringTaskConfig:
    key: str
    task_path: str
    schedule: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue_name: str | None = None
    priority: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class QueueConfig:
    mode: Mode = "fork"
    workers: tuple[WorkerConfig, ...] = (WorkerConfig(),)
    dispatchers: tuple[DispatcherConfig, ...] = (DispatcherConfig(),)
    scheduler: SchedulerConfig = SchedulerConfig()
    recurring: tuple[RecurringTaskConfig, ...] = ()
    retries: RetriesConfig = RetriesConfig()
    metrics: MetricsConfig = MetricsConfig()
    # Seconds one attempt of a task that declares no timeout may run; None: no limit.
    timeout: float | None = None
    database_alias: str = "default"
    preserve_finished_jobs: bool = True
    clear_finished_jobs_after: float | None = None
    use_skip_locked: bool = True
    listen_notify: bool = True
    silence_polling: bool = True
    # SQLite: the runtime switches the queue database file to WAL journal mode.
    sqlite_wal: bool = True
    process_heartbeat_interval: float = 60.0
    process_alive_threshold: float = 300.0
    shutdown_timeout: float = 5.0
    on_thread_error: str | None = None

    @property
    def default_retry_policy(self) -> RetryPolicy:
        """What a task that declares no retry options of its own gets."""
        retries = self.retries
        return RetryPolicy(
            max_attempts=retries.max_attempts,
            delay=retries.delay,
            max_delay=retries.max_delay,
            jitter=retries.jitter,
            timeout=self.timeout,
        )


_Parser = Callable[[Any, str], Any]


class _Reader:
    """Reads one mapping of options, naming each key by its full path in errors."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{where}: expected a mapping, got {type(data).__name__}.")
        self.data = data
        self.where = where
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}[{key!r}]"

    def get(self, key: str, default: Any, parse: Callable[[Any, str], Any]) -> Any:
        self.seen.add(key)
        if key not in self.data:
            return default
        return parse(self.data[key], self.path(key))

    def reject_unknown(self) -> None:
        unknown = sorted(str(k) for k in self.data if k not in self.seen)
        if unknown:
            allowed = ", ".join(sorted(self.seen))
            raise ConfigurationError(
                f"{self.where}: unknown option(s) {', '.join(map(repr, unknown))}. "
                f"Known options here: {allowed}."
            )


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{where}: expected a whole number of at least 1, got {value!r}.")
    return value


def _whole_number(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{where}: expected a whole number of at least 0, got {value!r}.")
    return value


def _seconds_or_zero(value: Any, where: str) -> float:
    if not isinstance(value, bool) and value == 0:
        return 0.0
    try:
        return _seconds(value, where)
    except ConfigurationError:
        raise ConfigurationError(
            f"{where}: expected a number of seconds, 0 or above, got {value!r}."
        ) from None


def _seconds(value: Any, where: str) -> float:
    seconds = None
    if not isinstance(value, bool) and isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"{where}: expected a number of seconds above 0, got {value!r}.")
    return seconds


def _optional_seconds(value: Any, where: str) -> float | None:
    return None if value is None else _seconds(value, where)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where}: expected true or false, got {value!r}.")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where}: expected a non-empty string, got {value!r}.")
    return value


def _optional_name(value: Any, where: str) -> str | None:
    return None if value is None else _name(value, where)


def _mode(value: Any, where: str) -> Mode:
    if value not in MODES:
        raise ConfigurationError(f"{where}: expected 'fork' or 'async', got {value!r}.")
    return cast(Mode, value)


def _queue_selectors(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ConfigurationError(
            f"{where}: expected a non-empty list of queue names, 'prefix*' patterns or '*', "
            f"got {value!r}."
        )
    selectors = []
    for index, selector in enumerate(value):
        item = f"{where}[{index}]"
        _name(selector, item)
        if "*" in selector[:-1]:
            raise ConfigurationError(
                f"{item}: {selector!r} has '*' before its end; only a trailing '*' "
                "(a prefix such as 'email*', or '*' alone) is understood."
            )
        selectors.append(selector)
    return tuple(selectors)


def _list_of(parse_item: Callable[[Any, str], Any]) -> Callable[[Any, str], tuple[Any, ...]]:
    def parse(value: Any, where: str) -> tuple[Any, ...]:
        if isinstance(value, Mapping):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigurationError(f"{where}: expected a list of mappings, got {value!r}.")
        return tuple(parse_item(item, f"{where}[{index}]") for index, item in enumerate(value))

    return parse


def _read[C](cls: type[C], value: Any, where: str, parsers: Mapping[str, _Parser]) -> C:
    """An instance of the dataclass ``cls`` from the mapping ``value``: each key in
    ``parsers`` read with its parser, absent keys left at the dataclass default."""
    reader = _Reader(value, where)
    default = cls()
    values = {
        name: reader.get(name, getattr(default, name), parse) for name, parse in parsers.items()
    }
    reader.reject_unknown()
    return cls(**values)


def _worker(value: Any, where: str) -> WorkerConfig:
    parsers = {
        "queues": _queue_selectors,
        "threads": _positive_int,
        "processes": _positive_int,
        "polling_interval": _seconds,
        "prefetch": _whole_number,
        "completion_window": _seconds_or_zero,
    }
    return _read(WorkerConfig, value, where, parsers)


def _dispatcher(value: Any, where: str) -> DispatcherConfig:
    parsers = {
        "batch_size": _positive_int,
        "polling_interval": _seconds,
        "concurrency_maintenance": _bool,
        "concurrency_maintenance_interval": _seconds,
    }
    return _read(DispatcherConfig, value, where, parsers)


def _scheduler(value: Any, where: str) -> SchedulerConfig:
    parsers = {
        "dynamic_tasks_enabled": _bool,
        "polling_interval": _seconds,
        "time_zone": _time_zone,
    }
    return _read(SchedulerConfig, value, where, parsers)


def _retries(value: Any, where: str) -> RetriesConfig:
    def problem(key: str) -> Callable[[str], Exception]:
        return lambda text: ConfigurationError(f"{where}[{key!r}]: {text}")

    parsers = {
        "max_attempts": lambda v, w: whole_attempts(v, problem("max_attempts")),
        "delay": lambda v, w: seconds(v, problem("delay"), zero=True),
        "max_delay": lambda v, w: seconds(v, problem("max_delay"), zero=True),
        "jitter": _bool,
    }
    return _read(RetriesConfig, value, where, parsers)


def _token(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) < 16 or value != value.strip():
        raise ConfigurationError(
            f"{where}: expected a string of at least 16 characters without surrounding "
            "spaces (a random secret, e.g. from `python -c 'import secrets; "
            "print(secrets.token_urlsafe())'`), or None for staff sessions only."
        )
    return value


def _metrics(value: Any, where: str) -> MetricsConfig:
    parsers = {"token": _token, "cache_seconds": _seconds_or_zero}
    return _read(MetricsConfig, value, where, parsers)


def _timeout(value: Any, where: str) -> float | None:
    if value is None:
        return None
    return seconds(value, lambda text: ConfigurationError(f"{where}: {text}"), zero=False)


def _time_zone(value: Any, where: str) -> str | None:
    if value is None:
        return None
    name = _name(value, where)
    time_zone(name, where)
    return name


def _cron(value: Any, where: str) -> str:
    return check_schedule(value, where)


def _priority(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -100 <= value <= 100:
        raise ConfigurationError(
            f"{where}: expected a whole number from -100 to 100, got {value!r}."
        )
    return value


def _recurring(value: Any, where: str) -> tuple[RecurringTaskConfig, ...]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping of task key to settings.")
    tasks = []
    for key, entry in value.items():
        item = f"{where}[{key!r}]"
        _name(key, item)
        reader = _Reader(entry, item)
        args = reader.get("args", (), lambda v, w: _json_list(v, w))
        kwargs = reader.get("kwargs", {}, lambda v, w: _json_mapping(v, w))
        tasks.append(
            RecurringTaskConfig(
                key=key,
                task_path=reader.get("task_path", None, _name) or _missing(item, "task_path"),
                schedule=reader.get("schedule", None, _cron) or _missing(item, "schedule"),
                args=args,
                kwargs=kwargs,
                queue_name=reader.get("queue_name", None, _optional_name),
                priority=reader.get("priority", None, _priority),
                description=reader.get("description", "", lambda v, w: str(v)),
            )
        )
        reader.reject_unknown()
    return tuple(tasks)


def _json_list(value: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigurationError(f"{where}: expected a list of arguments, got {value!r}.")
    return tuple(value)


def _json_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(f"{where}: expected a mapping with string keys, got {value!r}.")
    return dict(value)


def _missing(where: str, key: str) -> Any:
    raise ConfigurationError(f"{where}: {key!r} is required.")


def parse_options(options: object, where: str) -> QueueConfig:
    """Parse one backend's OPTIONS mapping (already merged from every source)."""
    parsers: dict[str, _Parser] = {
        "mode": _mode,
        "workers": _list_of(_worker),
        "dispatchers": _list_of(_dispatcher),
        "scheduler": _scheduler,
        "recurring": _recurring,
        "retries": _retries,
        "metrics": _metrics,
        "timeout": _timeout,
        "database_alias": _name,
        "preserve_finished_jobs": _bool,
        "clear_finished_jobs_after": _optional_seconds,
        "use_skip_locked": _bool,
        "listen_notify": _bool,
        "silence_polling": _bool,
        "sqlite_wal": _bool,
        "process_heartbeat_interval": _seconds,
        "process_alive_threshold": _seconds,
        "shutdown_timeout": _seconds,
        "on_thread_error": _optional_name,
    }
    config = _read(QueueConfig, {} if options is None else options, where, parsers)
    if config.process_alive_threshold <= config.process_heartbeat_interval:
        raise ConfigurationError(
            f"{where}['process_alive_threshold']: must be longer than "
            f"process_heartbeat_interval ({config.process_heartbeat_interval}s), or live "
            "processes would be pruned between two heartbeats."
        )
    return config
