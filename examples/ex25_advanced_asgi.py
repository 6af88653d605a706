"""ex25 — embedded mode: the queue runs inside uvicorn's own process.

The README's asgi.py wraps Django's ASGI application in DjQueueLifespan: uvicorn's
lifespan startup starts an embedded supervisor (its workers are threads of the
server process) and shutdown stops it. Over HTTP we enqueue a job and poll its
status; the job runs in uvicorn's pid. This module is the URLconf with the views.

    python examples/ex25_advanced_asgi.py
"""

import json
import os
import signal
import sys

import _support as example

example.configure(urls="ex25_advanced_asgi")

from django.http import JsonResponse  # noqa: E402
from django.tasks import task  # noqa: E402
from django.urls import path  # noqa: E402

from dj_queue.models import Process  # noqa: E402

# The README's asgi.py, verbatim; written to the work directory for uvicorn to load.
ASGI_PY = """\
from django.core.asgi import get_asgi_application

from dj_queue.contrib.asgi import DjQueueLifespan

django_application = get_asgi_application()
application = DjQueueLifespan(django_application)
"""


@task
def report_pid():
    return os.getpid()


def enqueue_view(request):
    result = report_pid.enqueue()
    return JsonResponse({"id": result.id, "status": result.status.value})


def status_view(request, job_id):
    result = report_pid.get_backend().get_result(job_id)
    done = result.status.value == "SUCCESSFUL"
    return JsonResponse(
        {"status": result.status.value, "pid": result.return_value if done else None}
    )


urlpatterns = [path("enqueue/", enqueue_view), path("jobs/<str:job_id>/", status_view)]


def main():
    (example.workdir() / "asgi.py").write_text(ASGI_PY)
    port = example.free_port()
    base = f"http://127.0.0.1:{port}"
    command = f"-m uvicorn asgi:application --host 127.0.0.1 --port {port} --lifespan on"
    server = example.start(
        "uvicorn",
        [sys.executable, *command.split(), "--app-dir", str(example.workdir())],
        env={"DJ_QUEUE_EXAMPLE_LOG_LEVEL": "INFO"},
    )
    example.wait_for_url(f"{base}/")  # uvicorn listens once the lifespan startup completed
    example.say(f"uvicorn (pid {server.pid}) is serving {base}")

    supervisor = Process.objects.get(kind="supervisor", pid=server.pid)
    kinds = sorted(Process.objects.filter(supervisor=supervisor).values_list("kind", flat=True))
    meta = supervisor.metadata
    example.say(
        f"registered in uvicorn's pid: a supervisor (mode={meta['mode']}, "
        f"embedded={meta['embedded']}) and its threads {kinds}"
    )
    example.check(meta["embedded"], "the supervisor should read as embedded")
    pids = set(Process.objects.values_list("pid", flat=True))
    example.check(pids == {server.pid}, f"every actor should be in uvicorn's process: {pids}")

    job = json.loads(example.fetch(f"{base}/enqueue/", data=b""))
    example.say(f"POST /enqueue/ -> {job}")

    def succeeded():
        status = json.loads(example.fetch(f"{base}/jobs/{job['id']}/"))
        return status if status["status"] == "SUCCESSFUL" else None

    status = example.wait_until(succeeded, what="the job to succeed")
    example.say(f"GET /jobs/{job['id']}/ -> {status}")
    example.check(status["pid"] == server.pid, "the job should run inside uvicorn's process")

    code = server.stop()  # SIGTERM: uvicorn's lifespan shutdown stops the supervisor
    # Uvicorn re-raises the signal it stopped on once it has shut down cleanly.
    example.check(code in (0, -signal.SIGTERM), f"uvicorn exited with code {code}")
    example.check("Application shutdown complete" in server.log(), "a clean lifespan shutdown")
    left = Process.objects.count()
    example.check(left == 0, f"{left} process rows left after the stop")
    example.say(
        f"job ran in uvicorn's pid {status['pid']}; after SIGTERM (exit {code}) "
        f"{left} dj_queue processes are registered"
    )


if __name__ == "__main__":
    example.run(main)
