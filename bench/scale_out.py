"""Scale-out of dj_queue on PostgreSQL: several worker-only nodes on one database.

    .venv/bin/python bench/scale_out.py [--jobs 20000] [--nodes 1,2,3] [--repeat 1]
                                        [--fairness [--burst 80] [--seconds 0.1]]
                                        [--prefetch N] [--completion-window SECONDS]
                                        [--json PATH]

Scale-out (the default): for each node count n, from empty tables, ``--jobs`` no-op jobs
are pre-filled, then n separate ``manage.py dj_queue --only-work`` runtimes (each its own
session, 1 worker process x 4 threads as in bench/settings.py) drain them. Reported:
jobs/s from the runtimes' start to the last finish, jobs/s from the first start to the
last finish (the job rows), and the CPU used from the runtimes' start until the last job
was seen finished, as a share of all the machine's cores: the PostgreSQL server's (every
process named ``postgres``: server-wide, so other users of the server count too) and the
runtimes' (every process in their sessions, start-up included). ``--repeat N`` runs
every node count N times in a rotating order; the table shows medians and min-max.

Fairness (``--fairness``, instead of the scale-out): two such nodes, idle and started, get
a burst of ``--burst`` jobs sleeping ``--seconds`` each, enqueued at once. Reported: how
many jobs each node ran (by the workers' names in the job rows, mapped to nodes through
the dj_queue Process table), the makespan (first start -> last finish) and the ideal one
(jobs x seconds / all threads).

``--prefetch`` and ``--completion-window`` set those worker options in every node's
OPTIONS (through bench/scale_settings.py); without them the defaults apply.

Figures and machine facts go to JSON (default bench/results/scale-out-<UTC>.json, or
scale-out-fairness-<UTC>.json).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from bench.harness import Runtime

NODE_COMMAND = ["dj_queue", "--backend", "default", "--only-work"]
POLL_SECONDS = 0.2  # how often the benchmark counts unfinished jobs (a query PostgreSQL pays)
TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per drain (default 20000)")
    parser.add_argument(
        "--nodes", type=_node_counts, default=[1, 2, 3], help="node counts (default 1,2,3)"
    )
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="runs of each (1)")
    parser.add_argument("--fairness", action="store_true", help="run the fairness scenario")
    parser.add_argument("--burst", type=int, default=80, help="fairness: jobs (default 80)")
    parser.add_argument(
        "--seconds", type=float, default=0.1, help="fairness: each job's sleep (default 0.1)"
    )
    parser.add_argument("--prefetch", type=int, metavar="N", help="worker option prefetch")
    parser.add_argument("--completion-window", type=float, metavar="SECONDS", help="worker option")
    parser.add_argument("--json", metavar="PATH", help="where to write the figures")
    args = parser.parse_args()
    if min(args.jobs, args.repeat, args.burst) < 1 or args.seconds < 0:
        parser.error("--jobs, --repeat and --burst must be at least 1, --seconds not negative")
    return args


def _node_counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of node counts of at least 1")
    return counts


def main() -> int:
    from bench.run import DEFAULT_CONN_MAX_AGE, FOREIGN_ENV

    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupt)  # unwind: stop the runtimes, drop the database
    for name in FOREIGN_ENV:
        os.environ.pop(name, None)
    os.environ["DJ_QUEUE_BENCH_DB"] = "postgresql"
    os.environ["DJ_QUEUE_BENCH_CONN_MAX_AGE"] = str(DEFAULT_CONN_MAX_AGE)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from bench import report
    from bench.harness import LoadWatch, scratch_database
    from bench.measures import rotated
    from bench.run import _runtime_env
    from dj_queue.config_loading import load_config
    from dj_queue.exceptions import ConfigurationError

    watch = LoadWatch()
    started = datetime.now(UTC)
    options = runtime_options(args.prefetch, args.completion_window)
    try:  # refused now rather than by every node at its start
        load_config("default", options, environ={})
    except ConfigurationError as exc:
        print(f"this dj_queue refuses the runtime options: {exc}", file=sys.stderr)
        return 2
    with scratch_database() as name:
        results = report.describe("postgresql", False, started)
        del results["quick"]
        results["settings"]["dj_queue_OPTIONS"] = options
        results["commands"] = [" ".join(["manage.py", *NODE_COMMAND])]
        results["repeat"] = args.repeat
        env = {
            **_runtime_env(name),
            "DJANGO_SETTINGS_MODULE": "bench.scale_settings",
            "DJ_QUEUE_BENCH_OPTIONS": json.dumps(options),
        }
        samples: dict[int, list[dict[str, Any]]] = {}
        runs: list[dict[str, Any]] = []
        for turn in range(args.repeat):
            if args.fairness:
                runs.append(fairness(args.burst, args.seconds, env, options))
                print(fairness_line(runs[-1]), flush=True)
                watch.sample(f"after fairness {turn}")
                continue
            for nodes in rotated(args.nodes, turn):
                figures = scale_out(args.jobs, nodes, env)
                samples.setdefault(nodes, []).append(figures)
                print(
                    f"  {nodes} node(s): {figures['jobs_per_s']:.0f} jobs/s, "
                    f"PostgreSQL {figures['postgres_cpu_pct']:.0f}%, "
                    f"runtimes {figures['runtimes_cpu_pct']:.0f}% CPU",
                    flush=True,
                )
                watch.sample(f"after {nodes} nodes")
        results["git_end"] = report.git_state()
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["load"] = watch.summary()
    results["warnings"] = [f"busy machine, figures noisy: {w}" for w in results["load"]["warnings"]]
    results["duration_seconds"] = (datetime.now(UTC) - started).total_seconds()
    if args.fairness:
        results["fairness"] = runs
        text = fairness_table(runs, options)
    else:
        results["scale_out"] = {"jobs": args.jobs, "rows": summarise(samples), "samples": samples}
        text = scale_out_table(results["scale_out"]["rows"], args.jobs)
    print("\n".join([*(f"WARNING: {w}" for w in results["warnings"]), text]))
    kind = "scale-out-fairness" if args.fairness else "scale-out"
    path = Path(args.json or ROOT / "bench" / "results" / f"{kind}-{started:%Y%m%dT%H%M%SZ}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**results, "command": sys.argv}, indent=2, default=str) + "\n")
    print(f"figures written to {path}")
    return 0


def runtime_options(prefetch: int | None, completion_window: float | None) -> dict[str, Any]:
    """bench/settings.py's dj_queue OPTIONS, with the worker options given added."""
    from django.conf import settings

    options = copy.deepcopy(settings.DJ_QUEUE_OPTIONS)
    extra: dict[str, Any] = {}
    if prefetch is not None:
        extra["prefetch"] = prefetch
    if completion_window is not None:
        extra["completion_window"] = completion_window
    options["workers"] = [{**worker, **extra} for worker in options["workers"]]
    return options


# -- scale-out ---------------------------------------------------------------------------


def scale_out(count: int, nodes: int, env: dict[str, str]) -> dict[str, Any]:
    """Drain ``count`` pre-filled no-op jobs with ``nodes`` worker-only runtimes."""
    from bench.harness import Runtime, empty_tables, poll
    from bench.measures import _all_done, _require_no_failures
    from bench.systems import systems

    ours = systems()[0]
    empty_tables()
    ours.prefill(count)
    postgres_before = postgres_cpu_seconds()
    with Runtime(f"scale_out_{nodes}", [NODE_COMMAND] * nodes, env) as runtime:
        poll(lambda: _all_done(ours, runtime), 60 + count / 10, POLL_SECONDS)
        wall = time.monotonic() - runtime.started
        postgres = postgres_cpu_seconds() - postgres_before
        runtimes = session_cpu_seconds(runtime)
        workers = worker_nodes(runtime)
    _require_no_failures(ours)
    first, last = ours.window()
    busy = (last - first).total_seconds()
    seconds = last.timestamp() - runtime.started_wall
    return {
        "nodes": nodes,
        "count": count,
        "seconds": seconds,
        "jobs_per_s": count / seconds,
        "busy_seconds": busy,
        "busy_jobs_per_s": count / busy,
        "startup_seconds": first.timestamp() - runtime.started_wall,
        "cpu_wall_seconds": wall,
        "postgres_cpu_seconds": postgres,
        "postgres_cpu_pct": 100 * postgres / wall / CORES,
        "runtimes_cpu_seconds": runtimes,
        "runtimes_cpu_pct": 100 * runtimes / wall / CORES,
        "jobs_per_node": jobs_per_node(workers, nodes),
    }


FIGURES = ("jobs_per_s", "busy_jobs_per_s", "postgres_cpu_pct", "runtimes_cpu_pct")


def summarise(samples: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per node count: the median and min-max of each figure, and jobs/s vs 1 node."""
    rows = []
    for nodes in sorted(samples):
        row: dict[str, Any] = {"nodes": nodes, "runs": len(samples[nodes])}
        for figure in FIGURES:
            values = [sample[figure] for sample in samples[nodes]]
            row[figure] = {"median": statistics.median(values), "min": min(values)}
            row[figure]["max"] = max(values)
        rows.append(row)
    one = next((row["jobs_per_s"]["median"] for row in rows if row["nodes"] == 1), None)
    for row in rows:
        row["vs_1_node"] = row["jobs_per_s"]["median"] / one if one else None
    return rows


def scale_out_table(rows: list[dict[str, Any]], count: int) -> str:
    headers = ("jobs/s", "busy jobs/s", "PostgreSQL CPU %", "runtimes CPU %")
    width = 20
    lines = [
        "",
        f"scale-out: {count} no-op jobs, each node `manage.py {' '.join(NODE_COMMAND)}` "
        f"(1 process x 4 threads); CPU as % of all {CORES} cores"
        + ("; median (min-max)" if rows and rows[0]["runs"] > 1 else ""),
        f"{'nodes':>5}" + "".join(f"{header:>{width}}" for header in headers) + f"{'x 1 node':>10}",
    ]
    for row in rows:
        cells = "".join(f"{_spread(row[figure], row['runs']):>{width}}" for figure in FIGURES)
        ratio = "-" if row["vs_1_node"] is None else f"{row['vs_1_node']:.2f}"
        lines.append(f"{row['nodes']:>5}{cells}{ratio:>10}")
    lines.append(
        "jobs/s: runtimes' start -> last finish; busy: first start -> last finish (job rows);"
        " CPU from the runtimes' start until the last job was seen finished;"
        " PostgreSQL's is server-wide"
    )
    return "\n".join(lines)


def _spread(figure: dict[str, float], runs: int) -> str:
    text = f"{figure['median']:.0f}"
    return text if runs == 1 else f"{text} ({figure['min']:.0f}-{figure['max']:.0f})"


# -- fairness ----------------------------------------------------------------------------

FAIR_NODES = 2
SETTLE_SECONDS = 0.5  # after the workers registered, so both are idle and listening


def fairness(
    jobs: int, seconds: float, env: dict[str, str], options: dict[str, Any]
) -> dict[str, Any]:
    """A burst of ``jobs`` sleeping jobs into two idle worker-only nodes."""
    from bench.benchapp.slow_tasks import sleep_for
    from bench.harness import Runtime, empty_tables, poll
    from bench.measures import _all_done, _require_no_failures
    from bench.systems import systems
    from dj_queue.models import Job

    ours = systems()[0]
    per_node = sum(worker["processes"] for worker in options["workers"])
    threads = sum(worker["threads"] * worker["processes"] for worker in options["workers"])
    empty_tables()
    with Runtime("fairness", [NODE_COMMAND] * FAIR_NODES, env) as runtime:

        def started() -> bool:
            runtime.check_alive()
            return len(worker_nodes(runtime)) == per_node * FAIR_NODES

        poll(started, timeout=60, interval=0.1)
        workers = worker_nodes(runtime)
        time.sleep(SETTLE_SECONDS)
        enqueued = time.time()
        ours.backend.enqueue_all([(sleep_for, (seconds,), {})] * jobs)  # type: ignore[attr-defined]
        poll(lambda: _all_done(ours, runtime), 60 + jobs * seconds, 0.05)
    _require_no_failures(ours)
    rows = list(Job.objects.values_list("worker_ids", "started_at", "finished_at"))
    first = min(row[1] for row in rows)
    last = max(row[2] for row in rows)
    ideal = jobs * seconds / (threads * FAIR_NODES)
    makespan = (last - first).total_seconds()
    nodes = [
        {
            "jobs": sum(1 for ids, _, _ in rows if workers.get(ids[-1]) == node),
            "last_finish_s": max(
                (
                    (end - first).total_seconds()
                    for ids, _, end in rows
                    if workers.get(ids[-1]) == node
                ),
                default=None,
            ),
        }
        for node in range(FAIR_NODES)
    ]
    return {
        "jobs": jobs,
        "seconds_each": seconds,
        "threads_per_node": threads,
        "nodes": nodes,
        "jobs_per_worker": dict(Counter(ids[-1] for ids, _, _ in rows)),
        "makespan_s": makespan,
        "ideal_makespan_s": ideal,
        "makespan_vs_ideal": makespan / ideal if ideal else None,
        "enqueue_to_first_start_s": first.timestamp() - enqueued,
        "enqueue_to_last_finish_s": last.timestamp() - enqueued,
    }


def fairness_line(run: dict[str, Any]) -> str:
    split = " / ".join(str(node["jobs"]) for node in run["nodes"])
    ends = " / ".join(f"{node['last_finish_s'] or 0:.2f}" for node in run["nodes"])
    ratio = run["makespan_vs_ideal"]
    return (
        f"  jobs per node {split:>9}   makespan {run['makespan_s']:.2f}s "
        f"(ideal {run['ideal_makespan_s']:.2f}s, x{ratio or 0:.2f})   each node's last finish "
        f"{ends}s   enqueue -> first start {run['enqueue_to_first_start_s']:.3f}s"
    )


def fairness_table(runs: list[dict[str, Any]], options: dict[str, Any]) -> str:
    first = runs[0]
    worker = {key: options["workers"][0].get(key, "-") for key in ("prefetch", "completion_window")}
    lines = [
        "",
        f"fairness: {first['jobs']} jobs of {first['seconds_each']:g}s enqueued at once into "
        f"{FAIR_NODES} idle `--only-work` nodes of {first['threads_per_node']} threads each; "
        f"prefetch {worker['prefetch']}, completion_window {worker['completion_window']}",
        *(fairness_line(run) for run in runs),
    ]
    if len(runs) > 1:
        spans = [run["makespan_s"] for run in runs]
        lines.append(
            f"  makespan median {statistics.median(spans):.2f}s ({min(spans):.2f}-{max(spans):.2f})"
        )
    return "\n".join(lines)


# -- processes and nodes -----------------------------------------------------------------


def postgres_cpu_seconds() -> float:
    """All the PostgreSQL server's processes (the postmaster reaps ended backends)."""
    from bench.harness import process_stats

    return sum(p.ticks_with_children for p in process_stats() if p.name == "postgres") / TICKS


def session_cpu_seconds(runtime: Runtime) -> float:
    """Every process in the runtime's sessions: each command and whatever it forked."""
    sessions = {process.pid for process in runtime.processes}
    from bench.harness import process_stats

    return sum(p.ticks_with_children for p in process_stats() if p.session in sessions) / TICKS


def worker_nodes(runtime: Runtime) -> dict[str, int]:
    """Worker process name -> index of its node (command) in ``runtime``, from the
    Process table: each node's supervisor is the command's own pid."""
    from dj_queue.models import Process

    node_of = {process.pid: index for index, process in enumerate(runtime.processes)}
    supervisors = {
        row.id: node_of[row.pid]
        for row in Process.objects.filter(kind=Process.Kind.SUPERVISOR, pid__in=node_of)
    }
    workers = Process.objects.filter(kind=Process.Kind.WORKER, supervisor_id__in=supervisors)
    return {row.name: supervisors[row.supervisor_id] for row in workers}


def jobs_per_node(workers: dict[str, int], nodes: int) -> list[int]:
    """Jobs each node finished, by the last worker name in each job row."""
    from dj_queue.models import Job

    counts = Counter(
        workers.get(ids[-1]) if ids else None
        for ids in Job.objects.values_list("worker_ids", flat=True).iterator()
    )
    if counts.get(None):
        print(f"  note: {counts[None]} job(s) ran on a worker no longer registered")
    return [counts.get(node, 0) for node in range(nodes)]


if __name__ == "__main__":
    sys.exit(main())
