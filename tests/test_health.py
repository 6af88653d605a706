"""``dj_queue_health``: healthy when the processes a deployment runs are alive,
whatever its topology (full node, dispatcher-only node, embedded supervisor)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dj_queue.db.clock import DatabaseNow
from dj_queue.models import Process
from dj_queue.operations.processes import register_process
from tests.conftest import wait_until

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
        "unhealthy: backend 'default': no supervisor has heartbeated within 5s"
    )


def test_a_full_node_is_healthy_until_one_of_its_children_goes_stale():
    supervisor, children = node(workers=2, dispatchers=1, scheduler=True)
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


def test_a_stale_supervisor_is_ignored_as_dead():
    supervisor, _ = node()
    age(supervisor, 60)
    assert health()[0] == 1
    node()
    assert health()[0] == 0


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


def test_bad_flags_are_usage_errors():
    with pytest.raises(CommandError, match=r"--require 'workers'.*worker, dispatcher, scheduler"):
        call_command("dj_queue_health", "--require", "workers")
    with pytest.raises(CommandError, match="--max-age takes a number above 0"):
        call_command("dj_queue_health", "--max-age", "-3")
    with pytest.raises(CommandError, match="--backend 'nope'"):
        call_command("dj_queue_health", "--backend", "nope")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("flags", [(), ("--only-dispatch",)])
def test_a_real_node_reads_healthy_while_alive_and_unhealthy_once_killed(start_runtime, flags):
    assert health()[0] == 1
    runtime = start_runtime(*flags)
    wait_until(lambda: health("--max-age", "3")[0] == 0, timeout=15, message=runtime.log())

    runtime.kill_tree()

    # Heartbeats every 1 s in the test settings: 3 s later the node is stale.
    wait_until(lambda: health("--max-age", "3")[0] == 1, timeout=15)
