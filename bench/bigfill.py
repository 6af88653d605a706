"""A big queue database filled in bulk SQL, as a busy deployment leaves it.

``fill(plan)`` writes, on PostgreSQL (``generate_series``) or MariaDB (the
Sequence engine's ``seq_1_to_N`` tables), in a few ``INSERT … SELECT``
statements of at most ``CHUNK`` rows each:

* ``plan.finished`` finished jobs, ``finished_at`` spread over the last two days
  (with a burst in the current minute), over eight task paths and six queues;
  one in a thousand failed, with its ``dj_queue_failed_execution`` row;
* ``plan.waiting`` waiting jobs: 80 % ready, 15 % scheduled (in the future), 5 %
  blocked on a concurrency key, three in four of each on the ``default`` queue
  (so that its counts pass the dashboard's cap) and the rest over the others;
* the finished-jobs tally as the runtime leaves it between two merges: a row
  per queue, status and minute of the last two hours, one row per queue and
  status with everything older (``minute`` NULL), and the current minute's
  rows un-merged, one per three jobs;

then, through the operations layer, registers a supervisor, four workers, a
dispatcher and a scheduler, has the workers claim ``plan.claims`` jobs, pauses
a queue, and adds a few recurring tasks and semaphores.

Job ids are UUIDv7 as ``dj_queue.ids.new_job_id`` makes them: the enqueue time
in milliseconds, then the row number where the random bits go. Times are
computed as microseconds since the epoch (UTC) and turned into the column's
type by the database, so no session time zone takes part.

The caller sets Django up and picks the database; every function works on the
``default`` alias's connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, InterfaceError, OperationalError, connection
from django.utils import timezone

from dj_queue.db.tallies import minute_of
from dj_queue.models import Process, RecurringTask, Semaphore
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.processes import register_process
from dj_queue.operations.queues import pause_queue

ALIAS = "default"
CHUNK = 200_000
RETRIES = 4
# Seconds to wait for a server that went away (restarted by someone else).
SERVER_WAIT = 300

TASK_PATHS = (
    "shop.tasks.send_receipt",
    "shop.tasks.charge_card",
    "mail.tasks.send_newsletter",
    "mail.tasks.send_welcome",
    "reports.tasks.build_daily",
    "reports.tasks.build_monthly",
    "search.tasks.reindex",
    "media.tasks.thumbnail",
)
QUEUES = ("default", "email", "reports", "billing", "media", "search")
BULK_QUEUE = QUEUES[0]
PAUSED_QUEUE = "media"
EXCEPTION_CLASSES = ("builtins.ValueError", "shop.errors.CardDeclined", "builtins.TimeoutError")
CONCURRENCY_KEYS = 50
FAILED_ONE_IN = 1_000
TRACEBACK = 'Traceback (most recent call last):\n  File "app/tasks.py", line 12, in run\n'
# The current minute's tally rows each count this many jobs (a busy runtime
# ends jobs in small batches, a row per batch and queue).
BURST_BATCH = 3

DAY_US = 86_400_000_000
MINUTE_US = 60_000_000
TALLY_WINDOW = timedelta(minutes=120)  # dj_queue.operations.tallies.WINDOW

DJ_QUEUE_TABLES = (
    "dj_queue_job",
    "dj_queue_ready_execution",
    "dj_queue_scheduled_execution",
    "dj_queue_claimed_execution",
    "dj_queue_blocked_execution",
    "dj_queue_failed_execution",
    "dj_queue_finished_tally",
    "dj_queue_process",
    "dj_queue_pause",
    "dj_queue_recurring_task",
    "dj_queue_semaphore",
)


@dataclass(frozen=True, slots=True)
class Plan:
    finished: int = 1_000_000
    waiting: int = 100_000
    claims: int = 40  # over four workers

    @property
    def ready(self) -> int:
        """Ready jobs once the workers have claimed theirs."""
        return self.waiting * 80 // 100

    @property
    def scheduled(self) -> int:
        return self.waiting * 15 // 100

    @property
    def blocked(self) -> int:
        return self.waiting - self.ready - self.scheduled

    @property
    def failed(self) -> int:
        return (self.finished + FAILED_ONE_IN // 2) // FAILED_ONE_IN

    @property
    def burst(self) -> int:
        """Finished jobs that ended in the current minute."""
        return min(2_000 * BURST_BATCH, self.finished // 100)


class Dialect:
    """The few expressions PostgreSQL and MariaDB spell differently."""

    vendor = ""

    def series(self, first: int, last: int) -> str:
        """A derived table of the integers ``first``…``last`` in column ``i``."""
        raise NotImplementedError

    def div(self, a: str, b: int) -> str:
        raise NotImplementedError

    def hex(self, expression: str) -> str:
        raise NotImplementedError

    def moment(self, us: str) -> str:
        """The timestamp ``us`` microseconds after the epoch (UTC)."""
        raise NotImplementedError

    def json(self, text: str) -> str:
        return text

    def job_id(self, ms: str, tag: str, number: str) -> str:
        """A UUIDv7 of ``ms`` milliseconds, four hex digits ``tag`` (its variant
        and the first random bits) and ``number`` in the last 48 bits."""
        raise NotImplementedError

    def minute(self, column: str) -> str:
        raise NotImplementedError

    def shift_minutes(self, column: str, minutes: int) -> str:
        raise NotImplementedError

    def analyze(self, cursor: Any) -> None:
        raise NotImplementedError


class PostgreSQL(Dialect):
    vendor = "postgresql"

    def series(self, first: int, last: int) -> str:
        return f"(SELECT i FROM generate_series({first}::bigint, {last}::bigint) AS g(i))"

    def div(self, a: str, b: int) -> str:
        return f"({a}) / {b}"

    def hex(self, expression: str) -> str:
        return f"to_hex({expression})"

    def moment(self, us: str) -> str:
        return f"to_timestamp(({us}) / 1000000.0)"

    def json(self, text: str) -> str:
        return f"CAST({text} AS jsonb)"

    def job_id(self, ms: str, tag: str, number: str) -> str:
        hex_ms, hex_number = self.hex(ms), self.hex(number)
        return (
            f"CAST(CONCAT(LPAD({hex_ms}, 12, '0'), '7000', '{tag}', "
            f"LPAD({hex_number}, 12, '0')) AS uuid)"
        )

    def minute(self, column: str) -> str:
        return f"date_trunc('minute', {column})"

    def shift_minutes(self, column: str, minutes: int) -> str:
        return f"{column} + interval '{minutes} minutes'"

    def analyze(self, cursor: Any) -> None:
        # A settled database, as autovacuum leaves it: statistics and a visibility map.
        cursor.execute("VACUUM ANALYZE")


class MariaDB(Dialect):
    vendor = "mariadb"

    def __init__(self, native_uuid: bool) -> None:
        # Django stores UUIDField as MariaDB's uuid type (10.7+) or as char(32) hex.
        self.native_uuid = native_uuid

    def series(self, first: int, last: int) -> str:
        # The Sequence engine's column is unsigned: signed, so that subtracting works.
        return f"(SELECT CAST(seq AS SIGNED) AS i FROM seq_{first}_to_{last})"

    def div(self, a: str, b: int) -> str:
        return f"({a}) DIV {b}"

    def hex(self, expression: str) -> str:
        return f"LOWER(HEX({expression}))"

    def moment(self, us: str) -> str:
        return f"TIMESTAMPADD(MICROSECOND, {us}, TIMESTAMP'1970-01-01 00:00:00')"

    def job_id(self, ms: str, tag: str, number: str) -> str:
        hex_ms, hex_number = self.hex(ms), self.hex(number)
        if self.native_uuid:
            return (
                f"CONCAT(SUBSTRING(LPAD({hex_ms}, 12, '0'), 1, 8), '-', "
                f"SUBSTRING(LPAD({hex_ms}, 12, '0'), 9, 4), '-7000-{tag}-', "
                f"LPAD({hex_number}, 12, '0'))"
            )
        return f"CONCAT(LPAD({hex_ms}, 12, '0'), '7000', '{tag}', LPAD({hex_number}, 12, '0'))"

    def minute(self, column: str) -> str:
        epoch = "TIMESTAMP'1970-01-01 00:00:00'"
        return f"TIMESTAMPADD(MINUTE, TIMESTAMPDIFF(MINUTE, {epoch}, {column}), {epoch})"

    def shift_minutes(self, column: str, minutes: int) -> str:
        return f"TIMESTAMPADD(MINUTE, {minutes}, {column})"

    def analyze(self, cursor: Any) -> None:
        cursor.execute(f"ANALYZE TABLE {', '.join(DJ_QUEUE_TABLES)}")
        cursor.fetchall()


def dialect() -> Dialect:
    if connection.vendor == "postgresql":
        return PostgreSQL()
    if connection.vendor == "mysql" and connection.mysql_is_mariadb:  # type: ignore[attr-defined]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                "DATABASE() AND TABLE_NAME = 'dj_queue_job' AND COLUMN_NAME = 'id'"
            )
            (data_type,) = cursor.fetchone()
        return MariaDB(native_uuid=data_type.lower() == "uuid")
    raise RuntimeError(
        f"bench/bigfill.py fills PostgreSQL or MariaDB, not {connection.display_name}."
    )


def pick(choices: Sequence[str], position: str, params: dict[str, Any], name: str) -> str:
    """``choices[position]`` as a CASE over parameters named ``name0``, ``name1``…"""
    branches = []
    for index, choice in enumerate(choices):
        params[f"{name}{index}"] = choice
        branches.append(f"WHEN {index} THEN %({name}{index})s")
    return f"CASE {position} {' '.join(branches)} END"


def chunks(first: int, last: int) -> list[tuple[int, int]]:
    return [(start, min(start + CHUNK - 1, last)) for start in range(first, last + 1, CHUNK)]


def epoch_us(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class Filler:
    def __init__(self, plan: Plan, now: datetime) -> None:
        self.plan = plan
        self.sql = dialect()
        self.now = now
        self.current = minute_of(now)
        self.now_us = epoch_us(now)
        self.current_us = epoch_us(self.current)
        self.steps: dict[str, float] = {}

    def step(self, name: str, run: Callable[[], object]) -> None:
        started = time.monotonic()
        run()
        self.steps[name] = round(time.monotonic() - started, 2)
        print(f"  {name}: {self.steps[name]:.1f}s", flush=True)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """One statement, in autocommit: written whole or not at all. A lost
        connection (a server restarted under the fill) is waited out and the
        statement run again; a duplicate key then means it had been written."""
        for attempt in range(RETRIES):
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params or None)
                return
            except IntegrityError:
                if attempt == 0:
                    raise
                return
            except (OperationalError, InterfaceError) as exc:
                if attempt == RETRIES - 1:
                    raise
                print(f"  lost the connection ({exc}): waiting for the server", flush=True)
                wait_for_server()

    # The finished jobs: row i ends at f_us, was enqueued 150 ms before.

    def finished_rows(self, first: int, last: int, params: dict[str, Any]) -> str:
        plan, d = self.plan, self.sql
        old = plan.finished - plan.burst
        old_step = 2 * DAY_US // max(old, 1)
        burst_step = max(1, (self.now_us - self.current_us) // max(plan.burst, 1))
        start_us = self.current_us - 2 * DAY_US
        ended = (
            f"CASE WHEN i <= {old} THEN {start_us} + (i - 1) * {old_step} "
            f"ELSE {self.current_us} + (i - {old + 1}) * {burst_step} END"
        )
        failed = f"MOD(i, {FAILED_ONE_IN}) = {FAILED_ONE_IN // 2}"
        exception = pick(EXCEPTION_CLASSES, f"MOD({d.div('i', FAILED_ONE_IN)}, 3)", params, "exc")
        return (
            f"SELECT i, f_us, f_us - 150000 AS e_us, "
            f"{pick(TASK_PATHS, f'MOD({d.div("i", 7)}, 8)', params, 'path')} AS task_path, "
            f"{pick(QUEUES, f'MOD({d.div("i", 3)}, 6)', params, 'queue')} AS queue_name, "
            f"CASE WHEN {failed} THEN 1 ELSE 0 END AS failed, {exception} AS exception "
            f"FROM (SELECT i, {ended} AS f_us FROM {d.series(first, last)} AS s) AS t"
        )

    def fill_finished(self) -> None:
        d = self.sql
        for first, last in chunks(1, self.plan.finished):
            params: dict[str, Any] = {}
            rows = self.finished_rows(first, last, params)
            # The JSON around the class name, as parameters: no SQL escaping.
            params["error_head"] = '[{"exception_class_path": "'
            params["error_middle"] = '", "traceback": ' + json.dumps(TRACEBACK)[:-1]
            params["error_tail"] = ': bench"}]'
            errors = (
                "CONCAT(%(error_head)s, exception, %(error_middle)s, exception, %(error_tail)s)"
            )
            self.execute(
                f"""
                INSERT INTO dj_queue_job (
                    id, backend_alias, task_path, queue_name, priority, args, kwargs,
                    enqueued_at, started_at, last_attempted_at, finished_at,
                    worker_ids, errors, return_value
                )
                SELECT
                    {d.job_id(d.div("e_us", 1000), "8000", "i")},
                    '{ALIAS}', task_path, queue_name, 0,
                    {d.json("CONCAT('[', i, ', \"some argument\"]')")},
                    {d.json("CONCAT('{\"user_id\": ', MOD(i, 5000), '}')")},
                    {d.moment("e_us")}, {d.moment("e_us + 50000")},
                    {d.moment("e_us + 50000")}, {d.moment("f_us")},
                    {d.json("'[\"worker-bench\"]'")},
                    CASE WHEN failed = 1 THEN {d.json(errors)} ELSE {d.json("'[]'")} END,
                    CASE WHEN failed = 1 THEN NULL ELSE {d.json("CONCAT('', i)")} END
                FROM ({rows}) AS n
                """,
                params,
            )

    def fill_failed(self) -> None:
        d = self.sql
        for first, last in chunks(1, self.plan.finished):
            params: dict[str, Any] = {"traceback": TRACEBACK}
            rows = self.finished_rows(first, last, params)
            self.execute(
                f"""
                INSERT INTO dj_queue_failed_execution (
                    job_id, queue_name, exception_class, message, traceback, created_at
                )
                SELECT
                    {d.job_id(d.div("e_us", 1000), "8000", "i")}, queue_name, exception,
                    CONCAT('bench failure of job ', i),
                    CONCAT(%(traceback)s, exception, ': bench'),
                    {d.moment("f_us")}
                FROM ({rows}) AS n
                WHERE failed = 1
                """,
                params,
            )

    # The waiting jobs: j = 1… ready, then scheduled, then blocked, enqueued
    # over the last hour; three in four on the bulk queue.

    def waiting_rows(self, first: int, last: int, params: dict[str, Any]) -> str:
        d = self.sql
        total = self.plan.waiting + self.plan.claims
        step = 3_600_000_000 // max(total, 1)
        start_us = self.now_us - 3_600_000_000
        others = pick(QUEUES[1:], f"MOD({d.div('j', 4)}, {len(QUEUES) - 1})", params, "other")
        params["bulk"] = BULK_QUEUE
        return (
            f"SELECT j, {start_us} + j * {step} AS e_us, "
            f"{pick(TASK_PATHS, f'MOD({d.div("j", 7)}, 8)', params, 'path')} AS task_path, "
            f"CASE WHEN MOD(j, 4) <> 0 THEN %(bulk)s ELSE {others} END AS queue_name, "
            f"CASE WHEN MOD(j, 10) = 0 THEN 5 ELSE 0 END AS priority "
            f"FROM (SELECT i AS j FROM {d.series(first, last)} AS s) AS t"
        )

    def fill_waiting(self, state: str, first: int, last: int) -> None:
        d = self.sql
        limited = state == "blocked"
        scheduled_at = f"{self.now_us + 600_000_000} + (j - {first}) * 1000000"
        for chunk_first, chunk_last in chunks(first, last):
            params: dict[str, Any] = {}
            rows = self.waiting_rows(chunk_first, chunk_last, params)
            key = f"CONCAT('bench-key-', MOD(j, {CONCURRENCY_KEYS}))"
            run_after = d.moment(scheduled_at) if state == "scheduled" else "NULL"
            self.execute(
                f"""
                INSERT INTO dj_queue_job (
                    id, backend_alias, task_path, queue_name, priority, args, kwargs,
                    run_after, concurrency_key, concurrency_limit, concurrency_duration,
                    concurrency_on_conflict, enqueued_at, worker_ids, errors
                )
                SELECT
                    {d.job_id(d.div("e_us", 1000), "9000", "j")},
                    '{ALIAS}', task_path, queue_name, priority,
                    {d.json("CONCAT('[', j, ', \"some argument\"]')")},
                    {d.json("'{}'")},
                    {run_after},
                    {key if limited else "NULL"}, {1 if limited else "NULL"},
                    {300.0 if limited else "NULL"}, {"'block'" if limited else "NULL"},
                    {d.moment("e_us")}, {d.json("'[]'")}, {d.json("'[]'")}
                FROM ({rows}) AS n
                """,
                params,
            )
            job_id = d.job_id(d.div("e_us", 1000), "9000", "j")
            if state == "ready":
                sql = f"""
                    INSERT INTO dj_queue_ready_execution (job_id, queue_name, priority, created_at)
                    SELECT {job_id}, queue_name, priority, {d.moment("e_us")} FROM ({rows}) AS n
                """
            elif state == "scheduled":
                sql = f"""
                    INSERT INTO dj_queue_scheduled_execution (
                        job_id, queue_name, priority, scheduled_at, created_at
                    )
                    SELECT {job_id}, queue_name, priority, {d.moment(scheduled_at)},
                        {d.moment("e_us")}
                    FROM ({rows}) AS n
                """
            else:
                expires = self.now_us + 15 * MINUTE_US
                sql = f"""
                    INSERT INTO dj_queue_blocked_execution (
                        job_id, queue_name, priority, concurrency_key, expires_at, created_at
                    )
                    SELECT {job_id}, queue_name, priority, {key}, {d.moment(str(expires))},
                        {d.moment("e_us")}
                    FROM ({rows}) AS n
                """
            self.execute(sql, params)

    def fill_tally(self) -> None:
        """The tally from the finished jobs, as the dispatcher's merges leave it."""
        d = self.sql
        adapt = connection.ops.adapt_datetimefield_value
        params = {"window": adapt(self.current - TALLY_WINDOW), "current": adapt(self.current)}
        status = "CASE WHEN f.id IS NULL THEN 'succeeded' ELSE 'failed' END"
        ended = (
            "FROM dj_queue_job j LEFT JOIN dj_queue_failed_execution f ON f.job_id = j.id "
            "WHERE j.finished_at IS NOT NULL"
        )
        insert = (
            "INSERT INTO dj_queue_finished_tally "
            "(backend_alias, queue_name, status, minute, count) "
        )
        self.execute(
            f"{insert} SELECT '{ALIAS}', j.queue_name, {status}, NULL, COUNT(*) "
            f"{ended} AND j.finished_at < %(window)s GROUP BY 2, 3",
            params,
        )
        self.execute(
            f"{insert} SELECT '{ALIAS}', j.queue_name, {status}, {d.minute('j.finished_at')}, "
            f"COUNT(*) {ended} AND j.finished_at >= %(window)s AND j.finished_at < %(current)s "
            "GROUP BY 2, 3, 4",
            params,
        )
        numbered = (
            f"SELECT j.queue_name, {status} AS status, ROW_NUMBER() OVER "
            f"(PARTITION BY j.queue_name, {status} ORDER BY j.id) AS n "
            f"{ended} AND j.finished_at >= %(current)s"
        )
        params["minute"] = adapt(self.current)
        self.execute(
            f"{insert} SELECT '{ALIAS}', queue_name, status, %(minute)s, COUNT(*) "
            f"FROM ({numbered}) AS b GROUP BY queue_name, status, {d.div('n - 1', BURST_BATCH)}",
            params,
        )

    def fill_live(self) -> None:
        """Processes holding claims, a paused queue, recurring tasks, semaphores."""
        supervisor = register_process(
            ALIAS, kind="supervisor", name="bench-supervisor", backend_alias=ALIAS
        )
        for kind in ("dispatcher", "scheduler"):
            register_process(
                ALIAS,
                kind=kind,
                name=f"bench-{kind}",
                backend_alias=ALIAS,
                supervisor_id=supervisor.id,
            )
        workers = 4
        for n in range(workers):
            worker = register_process(
                ALIAS,
                kind="worker",
                name=f"bench-worker-{n}",
                backend_alias=ALIAS,
                supervisor_id=supervisor.id,
            )
            share = self.plan.claims // workers + (n < self.plan.claims % workers)
            claimed = claim_jobs(
                ALIAS,
                process_id=worker.id,
                worker_id=worker.name,
                selectors=[QUEUES[n % len(QUEUES)]],
                limit=share,
            )
            assert len(claimed) == share, (len(claimed), share)
        pause_queue(ALIAS, PAUSED_QUEUE)
        now = timezone.now()
        schedules = [
            ("bench-nightly-report", "reports.tasks.build_daily", "0 3 * * *", True),
            ("bench-monthly-report", "reports.tasks.build_monthly", "0 4 1 * *", True),
            ("bench-newsletter", "mail.tasks.send_newsletter", "30 9 * * 1", True),
            ("bench-reindex", "search.tasks.reindex", "*/15 * * * *", True),
            ("bench-thumbnails", "media.tasks.thumbnail", "*/5 * * * *", False),
            ("bench-receipts", "shop.tasks.send_receipt", "0 * * * *", False),
        ]
        RecurringTask.objects.using(ALIAS).bulk_create(
            RecurringTask(
                key=key,
                task_path=path,
                schedule=schedule,
                static=static,
                last_run_at=now - timedelta(minutes=5),
                created_at=now,
                updated_at=now,
            )
            for key, path, schedule, static in schedules
        )
        Semaphore.objects.using(ALIAS).bulk_create(
            Semaphore(
                key=f"bench-key-{n}",
                value=0,
                expires_at=now + timedelta(minutes=15),
                created_at=now,
                updated_at=now,
            )
            for n in range(CONCURRENCY_KEYS)
        )

    def run(self) -> dict[str, float]:
        plan = self.plan
        ready = plan.ready + plan.claims
        scheduled_end = ready + plan.scheduled
        waiting_end = scheduled_end + plan.blocked
        print(f"filling {connection.vendor} ({self.sql.vendor}):", flush=True)
        self.step(f"{plan.finished:,} finished jobs", self.fill_finished)
        self.step(f"{plan.failed:,} failed executions", self.fill_failed)
        self.step(f"{ready:,} ready jobs", lambda: self.fill_waiting("ready", 1, ready))
        self.step(
            f"{plan.scheduled:,} scheduled jobs",
            lambda: self.fill_waiting("scheduled", ready + 1, scheduled_end),
        )
        self.step(
            f"{plan.blocked:,} blocked jobs",
            lambda: self.fill_waiting("blocked", scheduled_end + 1, waiting_end),
        )
        self.step("tally", self.fill_tally)
        self.step("processes, claims, pause, recurring", self.fill_live)
        self.step("analyze", analyze)
        return self.steps


def fill(plan: Plan, now: datetime | None = None) -> dict[str, float]:
    """Fill the (empty) dj_queue tables; returns seconds per step. RuntimeError
    if the tables do not hold the plan afterwards."""
    steps = Filler(plan, now or timezone.now()).run()
    found = counts()
    if not holds(plan, found):
        raise RuntimeError(f"the fill left other counts than planned: {found}")
    return steps


def wait_for_server(timeout: float = SERVER_WAIT) -> None:
    """Reconnect once the database server answers again."""
    deadline = time.monotonic() + timeout
    while True:
        connection.close()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def analyze() -> None:
    with connection.cursor() as cursor:
        dialect().analyze(cursor)


COUNTS = {
    "jobs": "SELECT COUNT(*) FROM dj_queue_job",
    "finished jobs": "SELECT COUNT(*) FROM dj_queue_job WHERE finished_at IS NOT NULL",
    "ready": "SELECT COUNT(*) FROM dj_queue_ready_execution",
    "scheduled": "SELECT COUNT(*) FROM dj_queue_scheduled_execution",
    "blocked": "SELECT COUNT(*) FROM dj_queue_blocked_execution",
    "claimed": "SELECT COUNT(*) FROM dj_queue_claimed_execution",
    "failed": "SELECT COUNT(*) FROM dj_queue_failed_execution",
    "tally rows": "SELECT COUNT(*) FROM dj_queue_finished_tally",
    "tally sum": "SELECT COALESCE(SUM(count), 0) FROM dj_queue_finished_tally",
    "processes": "SELECT COUNT(*) FROM dj_queue_process",
    "paused queues": "SELECT COUNT(*) FROM dj_queue_pause",
    "recurring tasks": "SELECT COUNT(*) FROM dj_queue_recurring_task",
}


def counts() -> dict[str, int]:
    found = {}
    with connection.cursor() as cursor:
        for name, sql in COUNTS.items():
            cursor.execute(sql)
            found[name] = int(cursor.fetchone()[0])
    return found


def holds(plan: Plan, found: dict[str, int]) -> bool:
    """Whether the tables hold what ``fill(plan)`` writes (a kept database)."""
    expected = {
        "jobs": plan.finished + plan.waiting + plan.claims,
        "finished jobs": plan.finished,
        "ready": plan.ready,
        "scheduled": plan.scheduled,
        "blocked": plan.blocked,
        "claimed": plan.claims,
        "failed": plan.failed,
        "tally sum": plan.finished,
    }
    return all(found.get(name) == value for name, value in expected.items())


def freshen(now: datetime | None = None) -> int:
    """Bring a filled database back to ``now``: the tally's minutes moved on
    so that its newest rows are the current minute's again, the processes'
    heartbeats renewed. Returns the minutes moved."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(minute) FROM dj_queue_finished_tally")
        (newest,) = cursor.fetchone()
    Process.objects.using(ALIAS).update(last_heartbeat_at=now)
    if newest is None:
        return 0
    if timezone.is_naive(newest):  # MariaDB: UTC without a zone
        newest = newest.replace(tzinfo=UTC)
    minutes = int((minute_of(now) - newest).total_seconds() // 60)
    if minutes > 0:
        column = dialect().shift_minutes("minute", minutes)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE dj_queue_finished_tally SET minute = {column} WHERE minute IS NOT NULL"
            )
    return minutes
