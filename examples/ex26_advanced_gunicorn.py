"""ex26 — embedded mode under gunicorn: the queue runs inside the web workers.

``gunicorn.conf.py`` is the README's one line (``post_fork`` and ``worker_exit``
from ``dj_queue.contrib.gunicorn``): each of the 2 gunicorn workers starts its own
embedded supervisor (the arbiter none). A POST enqueues a job, which a worker
thread of one of those supervisors runs; SIGTERM stops them all and deregisters.

    python examples/ex26_advanced_gunicorn.py
"""

import json
import os
import sys

import _support as example

example.configure(urls="ex26_advanced_gunicorn")

from django.http import JsonResponse  # noqa: E402
from django.tasks import task  # noqa: E402
from django.urls import path  # noqa: E402

from dj_queue.models import Process  # noqa: E402

GUNICORN_CONF = "from dj_queue.contrib.gunicorn import post_fork, worker_exit  # noqa: F401\n"
WSGI = "from django.core.wsgi import get_wsgi_application\n\napplication = get_wsgi_application()\n"


@task
def report_pid():
    return os.getpid()


def enqueue_view(request):
    result = report_pid.enqueue()
    return JsonResponse({"id": result.id, "served_by": os.getpid()})


urlpatterns = [path("enqueue/", enqueue_view)]


def kinds(supervisor):
    return sorted(supervisor.supervisees.values_list("kind", flat=True))


def ready_supervisors():
    """Both gunicorn workers' supervisors, once each has its worker and dispatcher."""
    supervisors = list(Process.objects.filter(kind="supervisor", metadata__embedded=True))
    ready = [s for s in supervisors if kinds(s) == ["dispatcher", "worker"]]
    return len(ready) == 2 and ready


def main():
    (example.workdir() / "gunicorn.conf.py").write_text(GUNICORN_CONF)
    (example.workdir() / "wsgi.py").write_text(WSGI)
    port = example.free_port()
    command = [sys.executable, "-m", "gunicorn", "-c", str(example.workdir() / "gunicorn.conf.py")]
    command += ["-w", "2", "-b", f"127.0.0.1:{port}", "--pythonpath", str(example.workdir())]
    server = example.start("gunicorn", [*command, "--graceful-timeout", "20", "wsgi:application"])
    example.wait_for_url(f"http://127.0.0.1:{port}/")
    supervisors = example.wait_until(
        ready_supervisors,
        timeout=20,
        what="both gunicorn workers' supervisors",
    )
    pids = {supervisor.pid for supervisor in supervisors}
    example.say(f"gunicorn arbiter pid {server.pid}; 2 workers, each with a supervisor:")
    for supervisor in supervisors:
        example.say(f"  pid {supervisor.pid}: supervisor (embedded) + {kinds(supervisor)}")
    example.check(server.pid not in pids, "the arbiter should run no supervisor")

    url = f"http://127.0.0.1:{port}/enqueue/"
    replies = [json.loads(example.fetch(url, data=b"")) for _ in range(6)]
    served = sorted({reply["served_by"] for reply in replies})
    example.say(f"POST /enqueue/ x6: enqueued by gunicorn worker(s) {served}")
    backend = report_pid.get_backend()
    results = example.wait_all([backend.get_result(reply["id"]) for reply in replies])
    owners = {p.name: p.supervisor.pid for p in Process.objects.filter(kind="worker")}
    ran_in = sorted({result.return_value for result in results})
    run_by = sorted({owners[result.worker_ids[0]] for result in results})
    example.say(f"6 jobs SUCCESSFUL, run in pid(s) {ran_in} by workers of supervisor(s) {run_by}")
    example.check(all(r.status.value == "SUCCESSFUL" for r in results), "every job should succeed")
    example.check(set(ran_in) <= pids and set(run_by) <= pids, "jobs should run in gunicorn")

    before = Process.objects.count()
    code = server.stop()
    left = Process.objects.count()
    example.check(code == 0 and left == 0, f"gunicorn exited {code}, {left} process rows left")
    example.say(
        f"SIGTERM: gunicorn exited {code}, process rows {before} -> {left} (all deregistered)"
    )


if __name__ == "__main__":
    example.run(main)
