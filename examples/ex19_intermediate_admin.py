"""ex19 — the Django admin: see jobs, failures and processes; retry a failed job.

With ``django.contrib.admin`` installed dj_queue registers its pages. Here a
superuser's test client reads the job, failed-execution and process lists while
a runtime runs, then posts the job list's "retry_failed" action for a job that
failed; the runtime runs it again, and this time it succeeds.

    python examples/ex19_intermediate_admin.py
"""

import _support as example

example.configure(admin=True, urls="ex19_intermediate_admin")

from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.tasks import task  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import path  # noqa: E402

urlpatterns = [path("admin/", admin.site.urls)]

JOBS = "/admin/dj_queue/job/"
FAILED = "/admin/dj_queue/failedexecution/"
PROCESSES = "/admin/dj_queue/process/"


@task
def greet(name):
    return f"hello {name}"


@task(takes_context=True)
def flaky(context):
    if context.attempt == 1:
        raise ConnectionError("the mail server hung up")
    return f"delivered on attempt {context.attempt}"


def changelist(client, url):
    response = client.get(url)
    example.check(response.status_code == 200, f"GET {url} -> {response.status_code}")
    return list(response.context["cl"].result_list)


def main():
    setup_test_environment()  # so responses carry their template context
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))

    with example.runtime():
        example.wait_all([greet.enqueue(n) for n in ("ada", "bob", "cy")])
        failed = example.wait(flaky.enqueue())
        example.check(failed.status.value == "FAILED", "flaky's first attempt should fail")

        jobs = changelist(client, JOBS)
        states = sorted(job.job_state for job in jobs)
        example.say(f"{JOBS}: {len(jobs)} jobs, states {states}")
        [failure] = changelist(client, FAILED)
        example.say(f"{FAILED}: 1 row, {failure.exception_class}: {failure.message}")
        processes = changelist(client, PROCESSES)
        example.say(f"{PROCESSES}: {sorted(p.kind for p in processes)}")
        example.check(states.count("finished") == 3 and "failed" in states, "jobs' states")

        response = client.post(
            JOBS,
            {"action": "retry_failed", "index": 0, "_selected_action": [failed.id]},
            follow=True,
        )
        messages = [str(message) for message in response.context["messages"]]
        example.say(f"POST retry_failed on job {failed.id} -> {messages}")
        retried = example.wait(failed)
        example.check(not changelist(client, FAILED), "the failed list should be empty now")

    example.check(retried.status.value == "SUCCESSFUL", "the retried job should succeed")
    example.say(
        f"retried from the admin: flaky -> {retried.return_value!r} "
        f"({retried.status.value}, {retried.attempts} attempts)"
    )


if __name__ == "__main__":
    example.run(main)
