"""Benchmark dj_queue against dj-queue 0.14.2 from PyPI, django-tasks-db and a raw-driver
reference, side by side on each database.

    .venv/bin/python bench/run.py [--database sqlite|postgresql|mariadb|all] [--quick]
                                  [--repeat N] [--conn-max-age N] [--no-peer] [--no-raw]
                                  [--json PATH]

For a no-op task, on a scratch database made for the run, each system gets: enqueue()
throughput, bulk enqueue throughput (batches of 500), drain throughput of its real
runtime started as ``manage.py`` subprocesses (plus first start -> last finish), and
enqueue-to-start latency at 20 jobs/s into an idle runtime. Tables are emptied before
every measurement.

- dj_queue: this repository, one runtime of 1 worker process x 4 threads.
- dj-queue 0.14.2: the public release of the same name (bench/peer.py). It gets its own
  virtualenv, made on demand under bench/results/ (bench/peer_venv.py), its own settings
  (bench/peer_settings.py, the same topology) and its own scratch database on the same
  server; its measurements run in child processes of that virtualenv.
- django-tasks-db: db_worker, one process, and four for a second drain row.
- raw: bench/raw/, the same job life cycle straight on the driver (4 consumer
  processes, one job or 100 per claim), in the same scratch database.

``--conn-max-age`` (default 600) is CONN_MAX_AGE for every Django system, so all of them
keep their connections open (django-tasks-db's worker closes its connection after every
job when it is 0). ``--repeat N`` runs every measurement N times, the systems taking
turns in a rotating order; the table shows medians and min-max. The machine's load
outside the benchmark is sampled between measurements; the table warns when it was
busy. Prints one table per database and writes every figure and sample to JSON
(bench/results/<database>-<UTC>.json).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASES = ("sqlite", "postgresql", "mariadb")
SIZES = {
    False: {"enqueue": 2000, "bulk": 20000, "drain": 10000, "latency": 200},
    True: {"enqueue": 500, "bulk": 5000, "drain": 2000, "latency": 60},
}
DEFAULT_CONN_MAX_AGE = 600  # every Django system keeps its connections
# Would change the dj_queue configuration under test (also the release's).
FOREIGN_ENV = ("DJ_QUEUE_CONFIG", "DJ_QUEUE_MODE", "DJ_QUEUE_SKIP_RECURRING")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=(*DATABASES, "all"), default="sqlite")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller counts: a few minutes for all three databases",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every measurement N times; report the median and min-max (default 1)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=DEFAULT_CONN_MAX_AGE,
        metavar="N",
        help=f"CONN_MAX_AGE for every Django system (default {DEFAULT_CONN_MAX_AGE}: "
        "persistent connections)",
    )
    parser.add_argument("--no-peer", action="store_true", help="leave out dj-queue from PyPI")
    parser.add_argument("--no-raw", action="store_true", help="leave out the raw reference")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="where to write the figures (default bench/results/<database>-<UTC time>.json; "
        "with --database all, -<database> is added to the name)",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main() -> int:
    return run_database_or_all(parse_args(), run_all, run_one)


def run_database_or_all(
    args: argparse.Namespace,
    run_all: Callable[[argparse.Namespace], int],
    run_one: Callable[[argparse.Namespace], int],
) -> int:
    """A benchmark's entry point: one database, or every one in child processes."""
    # SIGTERM unwinds like Ctrl-C, so runtimes are stopped and the database dropped.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.database == "all":
            return run_all(args)
        return run_one(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_all(args: argparse.Namespace) -> int:
    """One child process per database: Django's settings are fixed once set up."""
    status = 0
    for database in DATABASES:
        command = [sys.executable, __file__, "--database", database]
        command += ["--conn-max-age", str(args.conn_max_age), "--repeat", str(args.repeat)]
        command += [flag for flag, on in _FLAGS.items() if getattr(args, on)]
        if args.json:
            path = Path(args.json)
            command += ["--json", str(path.with_name(f"{path.stem}-{database}{path.suffix}"))]
        status = max(status, _run_child(command))
    return status


_FLAGS = {"--quick": "quick", "--no-peer": "no_peer", "--no-raw": "no_raw"}


def _run_child(command: list[str]) -> int:
    child = subprocess.Popen(command)
    try:
        return child.wait()
    finally:
        # Ctrl-C reached the child too; a SIGTERM sent to us alone must be passed on.
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            child.wait()


def run_one(args: argparse.Namespace) -> int:
    for name in FOREIGN_ENV:
        os.environ.pop(name, None)
    os.environ["DJ_QUEUE_BENCH_DB"] = args.database
    os.environ["DJ_QUEUE_BENCH_CONN_MAX_AGE"] = str(args.conn_max_age)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from bench import report
    from bench.harness import LoadWatch, scratch_database

    watch = LoadWatch()
    started = datetime.now(UTC)
    with scratch_database() as name, contextlib.ExitStack() as stack:
        results = report.describe(args.database, args.quick, started)
        results["repeat"] = args.repeat
        peer = None
        if not args.no_peer:
            from bench.peer import peer_database

            peer = stack.enter_context(peer_database(name))
            results["peer"] = peer.description
        raw, results["raw"] = _raw_module(args.no_raw)
        samples = measure_all(
            SIZES[args.quick],
            _runtime_env(name),
            args.repeat,
            peer=peer,
            raw=partial(raw.measure, args.database, _raw_connect(name)) if raw else None,
            watch=watch,
        )
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["git_end"] = report.git_state()
    results["load"] = watch.summary()
    results["metrics"] = report.metrics(samples, args.database)
    results["samples"] = samples
    results["warnings"] = report.warnings(results)
    results["duration_seconds"] = (datetime.now(UTC) - started).total_seconds()
    print(report.table(results))
    path = Path(args.json) if args.json else _default_path(args.database, started)
    report.write_json(results, path)
    print(f"figures written to {path}")
    return 0


def _raw_module(skip: bool) -> tuple[Any, dict[str, Any]]:
    """bench/raw/, if it imports."""
    if skip:
        return None, {"note": "left out (--no-raw)"}
    try:
        from bench import raw
    except ImportError as exc:
        return None, {"note": f"no raw columns: bench/raw/ could not be imported ({exc})"}
    return raw, {"module": "bench/raw/", "note": "measure(); see each sample's description"}


def _raw_connect(scratch_name: str) -> dict[str, Any]:
    """Driver connect() arguments for the scratch database, for bench/raw/."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"path": scratch_name}
    server = {"host": db["HOST"], "port": int(db["PORT"]), "user": db["USER"]}
    if connection.vendor == "postgresql":
        return {**server, "dbname": scratch_name}
    return {**server, "passwd": db["PASSWORD"], "database": scratch_name}


def _runtime_env(scratch_name: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJ_QUEUE_BENCH_DB_NAME": scratch_name,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def _default_path(database: str, started: datetime) -> Path:
    return ROOT / "bench" / "results" / f"{database}-{started:%Y%m%dT%H%M%SZ}.json"


Samples = dict[str, dict[str, list[dict[str, Any]]]]  # metric -> column -> one per repeat


def measure_all(
    sizes: dict[str, int],
    env: dict[str, str],
    repeat: int,
    *,
    peer: Any,
    raw: Callable[..., dict[str, dict[str, Any]]] | None,
    watch: Any,
) -> Samples:
    """Every measurement ``repeat`` times; each time the systems take turns in a new order."""
    from bench import measures, report
    from bench.systems import systems

    ours, theirs = systems()
    names = {
        ours.key: ours.name,
        theirs.key: theirs.name,
        "raw": "raw per-job",
        "raw_batched_100": "raw batch-100",
    }
    samples: Samples = {metric: {} for metric in ("enqueue", "bulk", "drain", "drain_4", "latency")}
    if peer is not None:
        names[peer.key] = peer.name

    def keep(metric: str, key: str, figures: dict[str, Any], shown: str = "") -> None:
        samples[metric].setdefault(key, []).append(figures)
        report.progress(shown or metric, names.get(key, key), figures)

    def take_turns(
        metric: str, runs: Mapping[str, Callable[[], dict[str, Any]]], turn: int
    ) -> None:
        for key in measures.rotated(list(runs), turn):
            figures = runs[key]()
            if key == "django_tasks_db_4":
                keep("drain_4", theirs.key, figures, "drain, 4 processes")
            else:
                keep(metric, key, figures)
            watch.sample(f"after {metric} {key}")

    for turn in range(repeat):
        if repeat > 1:
            print(f"  repeat {turn + 1} of {repeat}", flush=True)
        for metric, measure in (
            ("enqueue", measures.enqueue_throughput),
            ("bulk", measures.bulk_throughput),
        ):
            contenders = {ours.key: partial(measure, ours)}
            if peer is not None:
                contenders[peer.key] = getattr(peer, metric)
            contenders[theirs.key] = partial(measure, theirs)
            rounds = measures.interleaved(contenders, sizes[metric], rotation=turn)
            for key, figures in rounds.items():
                keep(metric, key, figures)
            watch.sample(f"after {metric}")
        count = sizes["drain"]
        drains = {ours.key: partial(measures.drain, ours, count, 1, env)}
        if peer is not None:
            drains[peer.key] = partial(peer.drain, count)
        drains[theirs.key] = partial(measures.drain, theirs, count, 1, env)
        drains["django_tasks_db_4"] = partial(measures.drain, theirs, count, 4, env)
        take_turns("drain", drains, turn)
        count = sizes["latency"]
        latencies = {ours.key: partial(measures.latency, ours, count, env)}
        if peer is not None:
            latencies[peer.key] = partial(peer.latency, count)
        latencies[theirs.key] = partial(measures.latency, theirs, count, env)
        take_turns("latency", latencies, turn)
        if raw is not None:
            for name, figures in raw(sizes, tag=f"r{turn}").items():
                metric, key = RAW_CELLS[name]
                keep(metric, key, figures)
            watch.sample("after raw")
    return samples


# bench/raw/'s metric -> (metric, column) here.
RAW_CELLS = {
    "enqueue": ("enqueue", "raw"),
    "bulk": ("bulk", "raw"),
    "drain": ("drain", "raw"),
    "drain_batched_100": ("drain", "raw_batched_100"),
    "latency": ("latency", "raw"),
}


if __name__ == "__main__":
    sys.exit(main())
