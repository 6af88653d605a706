"""``dj_queue_health``: healthy when the processes a deployment runs are alive,
whatever its topology (full node, dispatcher-only node, embedded supervisor)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connections

from dj_queue.db.clock import DatabaseNow
from dj_queue.models import Process
from dj_queue.operations.processes import register_process
from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.django_db


def health(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("dj_queue_health", *args, stdout=out)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue()
    return 0, out.getvalue()


def register(kind: str, *, supervisor=None, backend="default", **metadata) -> Process:
    return register_process(
        "default",
        kind=kind,
        name=f"{kind}-{uuid.uuid4().hex[:8]}",
        backend_alias=backend,
        metadata=metadata,
        supervisor_id=supervisor.pk if supervisor else None,
    )


def age(process: Process, seconds: float) -> None:
    Process.objects.filter(pk=process.pk).update(
        last_heartbeat_at=DatabaseNow() - timedelta(seconds=seconds)
    )


def node(*, workers=1, dispatchers=1, scheduler=False, embedded=False, backend="default"):
    """A supervisor with the children its registration says it runs."""
    supervisor = register(
        "supervisor",
        backend=backend,
        workers=workers,
        dispatchers=dispatchers,
        scheduler=scheduler,
        embedded=embedded,
    )
    children = [register("worker", supervisor=supervisor) for _ in range(workers)]
    children += [register("dispatcher", supervisor=supervisor) for _ in range(dispatchers)]
    if scheduler:
        children.append(register("scheduler", supervisor=supervisor))
    return supervisor, children


def test_no_supervisor_is_unhealthy_with_a_reason():
    code, output = health()
    assert code == 1
    assert output.strip() == (
        "unhealthy: backend 'default': no supervisor has heartbeated within 5s "
        "(no supervisor is registered)"
    )


def test_a_full_node_is_healthy_until_one_of_its_children_goes_stale(django_assert_num_queries):
    supervisor, children = node(workers=2, dispatchers=1, scheduler=True)
    with django_assert_num_queries(1):  # only the process table, in one query
        code, output = health()
    assert code == 0
    assert output.startswith("ok: backend 'default': live within 5s:")
    assert "2 worker" in output and "1 scheduler" in output

    age(children[1], 60)

    code, output = health()
    assert code == 1
    assert f"supervisor pid {supervisor.pid}" in output and "lacks 1 worker(s)" in output


def test_a_dispatcher_only_node_is_healthy():
    node(workers=0, dispatchers=1)
    assert health()[0] == 0


def test_an_embedded_supervisor_is_healthy_and_said_so_in_json():
    node(workers=1, dispatchers=1, embedded=True)
    code, output = health("--json")
    report = json.loads(output)
    assert code == 0 and report["healthy"] is True
    assert report["live"] == {"supervisor": 1, "worker": 1, "dispatcher": 1}
    assert report["supervisors"][0]["embedded"] is True
    assert report["max_age"] == 5


def test_a_supervisor_without_the_worker_it_runs_is_unhealthy():
    supervisor = register("supervisor", workers=1, dispatchers=1)
    register("dispatcher", supervisor=supervisor)
    register("worker")  # live, but another supervisor's (or nobody's): it does not count
    code, output = health()
    assert code == 1
    assert f"supervisor pid {supervisor.pid} on {supervisor.hostname} lacks 1 worker(s)" in output


def test_a_stale_supervisor_is_ignored_as_dead():
    supervisor, _ = node()
    age(supervisor, 60)
    code, output = health()
    assert code == 1
    assert "(the newest supervisor heartbeat is 6" in output, output
    node()
    assert health()[0] == 0


def test_missing_and_extra_metadata_keys_are_tolerated():
    bare = register("supervisor")  # no metadata at all: runs no child we know of
    Process.objects.filter(pk=bare.pk).update(metadata=["not", "a", "dict"])
    supervisor = register("supervisor", workers=1, mode="async", future_key={"x": 1})
    register("worker", supervisor=supervisor)
    code, output = health("--json")
    report = json.loads(output)
    assert code == 0, report
    assert sorted(item["expected"].get("worker", 0) for item in report["supervisors"]) == [0, 1]


def test_max_age_decides_what_is_stale():
    supervisor, children = node()
    for process in (supervisor, *children):
        age(process, 30)
    assert health("--max-age", "10")[0] == 1
    assert health("--max-age", "60")[0] == 0


def test_only_the_backends_own_processes_count():
    node(backend="other")
    assert health()[0] == 1


def test_one_node_is_probed_by_host_or_supervisor_pid():
    healthy, healthy_children = node()
    broken, children = node()
    Process.objects.filter(pk__in=[healthy.pk, *(c.pk for c in healthy_children)]).update(
        hostname="web-1"
    )
    Process.objects.filter(pk__in=[broken.pk, *(c.pk for c in children)]).update(hostname="web-2")
    Process.objects.filter(pk=broken.pk).update(pid=424242)
    age(children[0], 60)

    assert health()[0] == 1, "every live supervisor is checked by default"
    assert health("--host", "web-1")[0] == 0
    assert health("--host", "web-2")[0] == 1
    assert health("--supervisor-pid", "424242")[0] == 1
    code, output = health("--supervisor-pid", "1", "--host", "web-1")
    assert code == 1 and "no supervisor with pid 1 on host 'web-1'" in output


def test_require_asks_for_a_live_process_of_each_kind():
    node(workers=0, dispatchers=1)
    assert health("--require", "dispatcher")[0] == 0
    code, output = health("--require", "worker,dispatcher")
    assert code == 1 and "no worker has heartbeated within 5s" in output


def test_the_json_report_details_each_supervisor():
    supervisor, children = node(workers=2, dispatchers=1)
    age(children[0], 60)
    code, output = health("--json")
    report = json.loads(output)
    assert code == 1 and report["healthy"] is False
    assert report["live"] == {"supervisor": 1, "worker": 1, "dispatcher": 1}
    assert report["supervisors"] == [
        {
            "pid": supervisor.pid,
            "host": supervisor.hostname,
            "mode": None,
            "embedded": False,
            "expected": {"worker": 2, "dispatcher": 1},
            "live": {"worker": 1, "dispatcher": 1},
            "missing": {"worker": 1},
            "healthy": False,
        }
    ]


def test_an_unreachable_database_reads_unhealthy(backend):
    node()

    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection refused")

    with connections[backend.database_alias].execute_wrapper(refuse):
        code, output = health()
        json_code, json_output = health("--json")
    assert code == 1
    assert output.strip() == (
        "unhealthy: backend 'default': database unreachable: connection refused"
    )
    assert json_code == 1
    assert json.loads(json_output)["healthy"] is False


@pytest.mark.parametrize("value", ["workers", "worker,supervisor", "", " , "])
def test_a_bad_require_value_is_a_usage_error(value):
    with pytest.raises(CommandError, match=r"--require .*worker, dispatcher, scheduler") as info:
        call_command("dj_queue_health", "--require", value)
    assert info.value.returncode == 2


def test_bad_flags_are_usage_errors():
    with pytest.raises(CommandError, match="--supervisor-pid takes a whole number above 0"):
        call_command("dj_queue_health", "--supervisor-pid", "abc")
    with pytest.raises(CommandError, match="--max-age takes a number above 0"):
        call_command("dj_queue_health", "--max-age", "-3")
    with pytest.raises(CommandError, match="--backend 'nope'") as info:
        call_command("dj_queue_health", "--backend", "nope")
    assert info.value.returncode == 2


def test_the_exit_status_from_the_command_line(runtime_env):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", "dj_queue_health", *args],
            cwd=ROOT,
            env=runtime_env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    unhealthy = run()
    assert unhealthy.returncode == 1, unhealthy.stderr
    assert unhealthy.stdout.startswith("unhealthy: backend 'default': no supervisor")
    for args, message in [
        (("--require", "workers"), "--require 'workers'"),
        (("--backend", "nope"), "--backend 'nope'"),
        (("--max-age", "0"), "--max-age takes a number above 0"),
    ]:
        usage = run(*args)
        assert usage.returncode == 2, (args, usage.stdout, usage.stderr)
        assert message in usage.stderr and not usage.stdout


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("flags", "kinds"), [((), "worker,dispatcher"), (("--only-dispatch",), "dispatcher")]
)
def test_a_real_node_reads_healthy_while_alive_and_unhealthy_once_killed(
    start_runtime, flags, kinds
):
    assert health("--max-age", "2")[0] == 1
    runtime = start_runtime(*flags)
    wait_until(
        lambda: health("--max-age", "2", "--require", kinds)[0] == 0,
        timeout=15,
        message=runtime.log(),
    )

    runtime.kill_tree()  # SIGKILL: nothing deregisters

    # Heartbeats every 1 s in the test settings: 2 s after the last one, it is stale.
    wait_until(lambda: health("--max-age", "2")[0] == 1, timeout=15, interval=0.2)
    _, output = health("--max-age", "2")
    assert "(the newest supervisor heartbeat is " in output
