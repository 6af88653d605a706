"""The Django admin: pages, filters, search and actions, through the test client."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connections
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import dj_queue.admin as queue_admin
from dj_queue.models import (
    BlockedExecution,
    FailedExecution,
    Job,
    Pause,
    Process,
    RecurringTask,
    Semaphore,
)
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import JobError, complete_job, fail_job
from dj_queue.operations.processes import register_process
from dj_queue.operations.queues import is_paused, pause_queue
from tests.invariants import assert_invariants, job_states, state_of
from tests.taskapp.tasks import add, echo, sync_account

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:dj_queue_job_changelist")
FAILED = reverse("admin:dj_queue_failedexecution_changelist")
PROCESSES = reverse("admin:dj_queue_process_changelist")
PAUSES = reverse("admin:dj_queue_pause_changelist")
PAUSE_ADD = reverse("admin:dj_queue_pause_add")


# -- making jobs in each state ----------------------------------------------------------


def raised(exc: BaseException) -> JobError:
    try:
        raise exc
    except BaseException as caught:
        return JobError.from_exception(caught)


def enqueue(queue: str = "default", task=add) -> uuid.UUID:
    return uuid.UUID(task.using(queue_name=queue).enqueue(1, 2).id)


def claimed(process, queue: str = "work") -> uuid.UUID:
    """A job claimed by ``process``: enqueued on a queue nothing else waits in."""
    job_id = enqueue(queue)
    [job] = claim_jobs(
        "default", process_id=process.id, worker_id="worker-1", selectors=[queue], limit=1
    )
    assert job.id == job_id
    return job_id


def failed(process, message: str = "boom") -> uuid.UUID:
    job_id = claimed(process)
    assert fail_job("default", job_id, process.id, raised(ValueError(message)))
    return job_id


def finished(process) -> uuid.UUID:
    job_id = claimed(process)
    assert complete_job("default", job_id, process.id, {"sum": 3}, preserve=True)
    return job_id


def scheduled() -> uuid.UUID:
    return uuid.UUID(add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2).id)


def blocked() -> uuid.UUID:
    """A job waiting on its concurrency key, whose one slot a job elsewhere
    holds (a semaphore with no free slot)."""
    now = timezone.now()
    Semaphore.objects.create(
        key="account:999",
        value=0,
        expires_at=now + timedelta(minutes=5),
        created_at=now,
        updated_at=now,
    )
    return uuid.UUID(sync_account.using(queue_name="limited").enqueue(999).id)


@pytest.fixture
def jobs(worker_process) -> dict[str, uuid.UUID]:
    """One job in each state."""
    made = {
        "failed": failed(worker_process),
        "running": claimed(worker_process),
        "finished": finished(worker_process),
        "ready": enqueue(),
        "scheduled": scheduled(),
        "blocked": blocked(),
    }
    assert assert_invariants() == {
        "failed": 1,
        "claimed": 1,
        "finished": 1,
        "ready": 1,
        "scheduled": 1,
        "blocked": 1,
    }
    return made


def snapshot() -> tuple[dict[str, list[str]], list[dict]]:
    return job_states(), list(Job.objects.order_by("pk").values())


# -- clients ----------------------------------------------------------------------------


@pytest.fixture
def superuser(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def staff_client(*permissions: str) -> Client:
    user = User.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def listed(response) -> list[uuid.UUID]:
    assert response.status_code == 200, response.status_code
    return [obj.pk for obj in response.context["cl"].result_list]


def run_action(client: Client, url: str, action: str, pks, **extra) -> object:
    data = {"action": action, "index": 0, "_selected_action": [str(pk) for pk in pks], **extra}
    return client.post(url, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# -- job list ---------------------------------------------------------------------------


def test_job_changelist_shows_every_job_newest_first_with_its_state(superuser, jobs):
    response = superuser.get(JOBS)

    shown = response.context["cl"].result_list
    assert [job.pk for job in shown] == sorted(jobs.values(), reverse=True)
    assert {job.pk: job.job_state for job in shown} == {
        job_id: state for state, job_id in jobs.items()
    }
    content = response.content.decode()
    for label in ("Ready", "Scheduled", "Running", "Blocked", "Failed", "Finished"):
        assert f'<td class="field-state">{label}</td>' in content


@pytest.mark.parametrize(
    "state", ["ready", "scheduled", "running", "blocked", "failed", "finished"]
)
def test_job_state_filter(superuser, jobs, state):
    assert listed(superuser.get(JOBS, {"state": state})) == [jobs[state]]


def test_job_state_column_costs_no_query_per_job(superuser, worker_process):
    def queries_for_the_list() -> int:
        with CaptureQueriesContext(connections["default"]) as queries:
            superuser.get(JOBS)
        return len(queries)

    failed(worker_process)
    enqueue()
    few = queries_for_the_list()
    for _ in range(5):
        failed(worker_process)
        claimed(worker_process)
        enqueue()
        scheduled()

    assert queries_for_the_list() == few


def test_job_search_by_id(superuser, jobs):
    assert listed(superuser.get(JOBS, {"q": str(jobs["failed"])})) == [jobs["failed"]]
    assert listed(superuser.get(JOBS, {"q": f"  {jobs['ready'].hex} "})) == [jobs["ready"]]
    assert listed(superuser.get(JOBS, {"q": str(uuid.uuid4())})) == []


def test_job_search_by_task_path_prefix(superuser, jobs):
    echoed = enqueue(task=echo)

    assert listed(superuser.get(JOBS, {"q": "tests.taskapp.tasks.ec"})) == [echoed]
    added = set(jobs.values()) - {jobs["blocked"]}  # the blocked job is a sync_account
    assert set(listed(superuser.get(JOBS, {"q": "tests.taskapp.tasks.add"}))) == added
    # A prefix, not a substring.
    assert listed(superuser.get(JOBS, {"q": "taskapp.tasks.echo"})) == []


def test_job_search_combines_with_the_state_filter(superuser, jobs):
    response = superuser.get(JOBS, {"q": "tests.taskapp", "state": "failed"})

    assert listed(response) == [jobs["failed"]]


def test_job_changelist_paginates_with_a_bounded_count(superuser, monkeypatch):
    monkeypatch.setattr(queue_admin, "COUNT_LIMIT", 3)
    monkeypatch.setattr(queue_admin, "PAGES_AHEAD", 1)
    monkeypatch.setattr(queue_admin.JobAdmin, "list_per_page", 2)
    ids = sorted((enqueue() for _ in range(7)), reverse=True)

    first = superuser.get(JOBS)
    assert listed(first) == ids[:2]
    # Counted up to 4 rows (this page and the one after), so the total reads "4+".
    assert first.context["cl"].paginator.capped
    assert "4+ jobs" in first.content.decode()
    assert "Select all 4+ jobs" in first.content.decode()

    # A deeper page counts far enough to reach it.
    last = superuser.get(JOBS, {"p": 4})
    assert listed(last) == ids[6:]
    assert not last.context["cl"].paginator.capped
    assert "7 jobs" in last.content.decode()

    # A search shows its count of results only when it is exact.
    capped_search = superuser.get(JOBS, {"q": "tests.taskapp"}).content.decode()
    assert "4+ jobs" in capped_search
    assert " results" not in capped_search
    exact_search = superuser.get(JOBS, {"q": "tests.taskapp", "p": 4}).content.decode()
    assert "7 results" in exact_search


def test_bounded_paginator_counts_at_most_one_past_its_limit(jobs):
    paginator = queue_admin.BoundedPaginator(Job.objects.order_by("-pk"), 2, limit=4)

    assert (paginator.count, paginator.capped, paginator.count_label) == (5, True, "4+")
    exact = queue_admin.BoundedPaginator(Job.objects.order_by("-pk"), 2, limit=10)
    assert (exact.count, exact.capped, exact.count_label) == (6, False, "6")


def test_job_detail_page_is_read_only_and_shows_the_whole_job(superuser, jobs, worker_process):
    job_id = jobs["failed"]
    url = reverse("admin:dj_queue_job_change", args=[job_id])

    response = superuser.get(url)

    assert response.status_code == 200
    content = response.content.decode()
    assert "tests.taskapp.tasks.add" in content
    assert "Failed" in content
    assert "worker-1" in content  # worker_ids
    assert "builtins.ValueError" in content  # errors: class and traceback
    assert "Traceback (most recent call last)" in content
    assert "boom" in content  # the failure's message
    assert 'name="_save"' not in content
    before = snapshot()
    assert superuser.post(url, {"task_path": "x", "_save": "Save"}).status_code == 403
    assert snapshot() == before


def test_finished_job_detail_shows_args_kwargs_and_return_value(superuser, jobs):
    response = superuser.get(reverse("admin:dj_queue_job_change", args=[jobs["finished"]]))

    content = response.content.decode()
    assert "<pre>[\n  1,\n  2\n]</pre>" in content  # args
    assert "<pre>{}</pre>" in content  # kwargs
    assert "&quot;sum&quot;: 3" in content  # return value


def test_job_detail_of_an_unknown_or_malformed_id_redirects(superuser):
    for job_id in (uuid.uuid4(), "not-a-uuid"):
        response = superuser.get(reverse("admin:dj_queue_job_change", args=[job_id]))
        assert response.status_code == 302


def test_jobs_cannot_be_added_or_deleted_in_the_admin(superuser, jobs):
    before = snapshot()

    assert superuser.get(reverse("admin:dj_queue_job_add")).status_code == 403
    delete = reverse("admin:dj_queue_job_delete", args=[jobs["ready"]])
    assert superuser.post(delete, {"post": "yes"}).status_code == 403
    response = run_action(superuser, JOBS, "delete_selected", jobs.values(), post="yes")
    assert "No action selected." in messages_of(response)
    assert snapshot() == before


# -- job actions --------------------------------------------------------------------------


def test_retry_action_retries_failed_jobs_and_reports_the_skipped(superuser, jobs):
    response = run_action(superuser, JOBS, "retry_failed", [jobs["failed"], jobs["ready"]])

    assert messages_of(response) == [
        "Retried 1 failed job. Skipped 1 selected job that was not failed."
    ]
    assert state_of(jobs["failed"]) == "ready"
    assert state_of(jobs["ready"]) == "ready"
    assert assert_invariants()["ready"] == 2


def test_discard_failed_action_deletes_only_failed_jobs(superuser, jobs):
    response = run_action(superuser, JOBS, "discard_failed", jobs.values())

    assert messages_of(response) == [
        "Discarded 1 failed job. Skipped 5 selected jobs that were not failed."
    ]
    assert state_of(jobs["failed"]) == "missing"
    assert {state: state_of(job_id) for state, job_id in jobs.items() if state != "failed"} == {
        "running": "claimed",
        "finished": "finished",
        "ready": "ready",
        "scheduled": "scheduled",
        "blocked": "blocked",
    }
    assert_invariants()


def test_discard_waiting_action_deletes_ready_scheduled_and_blocked_jobs(superuser, jobs):
    response = run_action(superuser, JOBS, "discard_waiting", jobs.values())

    assert messages_of(response) == [
        "Discarded 3 waiting jobs. Skipped 3 selected jobs that were not waiting."
    ]
    assert state_of(jobs["ready"]) == state_of(jobs["scheduled"]) == "missing"
    assert state_of(jobs["blocked"]) == "missing"
    assert assert_invariants() == {"failed": 1, "claimed": 1, "finished": 1}


def test_release_blocked_action_moves_only_blocked_jobs_to_ready(superuser, jobs):
    response = run_action(superuser, JOBS, "release_blocked", jobs.values())

    assert messages_of(response) == [
        "Released 1 blocked job to run now, outside their concurrency limits. "
        "Skipped 5 selected jobs that were not blocked."
    ]
    assert state_of(jobs["blocked"]) == "ready"
    assert Job.objects.get(pk=jobs["blocked"]).concurrency_key is None


def test_release_from_the_blocked_list_needs_the_change_permission(jobs):
    blocked_list = reverse("admin:dj_queue_blockedexecution_changelist")
    row = BlockedExecution.objects.get(job_id=jobs["blocked"])
    viewer = staff_client("view_blockedexecution")

    response = run_action(viewer, blocked_list, "release_selected", [row.pk])
    assert state_of(jobs["blocked"]) == "blocked"

    viewer.logout()
    User.objects.get(username="staff").user_permissions.add(
        Permission.objects.get(codename="change_blockedexecution")
    )
    viewer.force_login(User.objects.get(username="staff"))
    response = run_action(viewer, blocked_list, "release_selected", [row.pk])
    assert messages_of(response)[0].startswith("Released 1 blocked job")
    assert state_of(jobs["blocked"]) == "ready"


def test_action_over_the_whole_filtered_list(superuser, jobs, worker_process):
    more = [failed(worker_process) for _ in range(3)]
    url = f"{JOBS}?state=failed"

    # The browser posts the rows ticked on the page along with "select all".
    response = run_action(superuser, url, "retry_failed", [jobs["failed"]], select_across=1)

    assert messages_of(response) == ["Retried 4 failed jobs."]
    assert {state_of(job_id) for job_id in [jobs["failed"], *more]} == {"ready"}
    assert assert_invariants()["failed"] == 0


def test_pause_and_resume_actions_act_on_the_queues_of_the_selected_jobs(superuser, jobs):
    pause_queue("default", "work")

    response = run_action(superuser, JOBS, "pause_queues", [jobs["ready"], jobs["failed"]])

    assert messages_of(response) == ["Paused 1 queue: default. Already paused: work."]
    assert is_paused("default", "default") and is_paused("default", "work")
    assert not is_paused("default", "limited")

    response = run_action(superuser, JOBS, "resume_queues", [jobs["ready"], jobs["blocked"]])

    assert messages_of(response) == ["Resumed 1 queue: default. Not paused: limited."]
    assert not is_paused("default", "default")
    assert is_paused("default", "work")
    assert_invariants()


# -- failed executions ----------------------------------------------------------------------


def test_failed_changelist_shows_job_task_queue_exception_and_message(superuser, worker_process):
    job_id = failed(worker_process, "x" * 500)

    response = superuser.get(FAILED)

    [row] = response.context["cl"].result_list
    assert row.job_id == job_id
    content = response.content.decode()
    assert str(job_id) in content
    assert reverse("admin:dj_queue_job_change", args=[job_id]) in content
    assert "tests.taskapp.tasks.add" in content
    assert "builtins.ValueError" in content
    assert "x" * 79 + "…" in content
    assert "x" * 81 not in content


def test_failed_search_by_job_id_and_exception_class(superuser, worker_process):
    first, second = failed(worker_process), failed(worker_process)

    assert [
        row.job_id for row in superuser.get(FAILED, {"q": str(first)}).context["cl"].result_list
    ] == [first]
    found = superuser.get(FAILED, {"q": "builtins.Value"}).context["cl"].result_list
    assert {row.job_id for row in found} == {first, second}
    assert list(superuser.get(FAILED, {"q": "ValueError"}).context["cl"].result_list) == []


def test_failed_detail_page_shows_the_traceback(superuser, worker_process):
    failed(worker_process, "kaboom")
    failure = FailedExecution.objects.get()

    response = superuser.get(reverse("admin:dj_queue_failedexecution_change", args=[failure.pk]))

    assert response.status_code == 200
    assert "Traceback (most recent call last)" in response.content.decode()
    assert "kaboom" in response.content.decode()


@pytest.mark.parametrize(
    ("action", "state", "verb"),
    [("retry_failed", "ready", "Retried"), ("discard_failed", "missing", "Discarded")],
)
def test_failed_actions(superuser, worker_process, action, state, verb):
    failures = [failed(worker_process) for _ in range(3)]
    kept = failed(worker_process)
    pks = FailedExecution.objects.filter(job_id__in=failures).values_list("pk", flat=True)

    response = run_action(superuser, FAILED, action, list(pks))

    assert messages_of(response) == [f"{verb} 3 failed jobs."]
    assert {state_of(job_id) for job_id in failures} == {state}
    assert state_of(kept) == "failed"
    assert_invariants()


def test_failed_executions_cannot_be_added_or_deleted(superuser, worker_process):
    failed(worker_process)
    failure = FailedExecution.objects.get()
    before = snapshot()

    assert superuser.get(reverse("admin:dj_queue_failedexecution_add")).status_code == 403
    delete = reverse("admin:dj_queue_failedexecution_delete", args=[failure.pk])
    assert superuser.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:dj_queue_failedexecution_change", args=[failure.pk])
    assert superuser.post(change, {"message": "edited"}).status_code == 403
    assert snapshot() == before


# -- processes, pauses and the rest ---------------------------------------------------------


def test_process_changelist(superuser, worker_process):
    register_process(
        "default",
        kind="supervisor",
        name="the-supervisor",
        backend_alias="default",
    )

    response = superuser.get(PROCESSES)

    names = {process.name for process in response.context["cl"].result_list}
    assert names == {"test-worker", "the-supervisor"}
    content = response.content.decode()
    assert str(os.getpid()) in content
    assert listed(superuser.get(PROCESSES, {"kind__exact": "worker"})) == [worker_process.pk]
    assert superuser.get(reverse("admin:dj_queue_process_add")).status_code == 403
    change = reverse("admin:dj_queue_process_change", args=[worker_process.pk])
    assert superuser.get(change).status_code == 200
    assert superuser.post(change, {"pid": "1"}).status_code == 403
    assert Process.objects.get(pk=worker_process.pk).pid == os.getpid()


def test_adding_a_pause_pauses_the_queue(superuser):
    response = superuser.post(PAUSE_ADD, {"queue_name": "email"}, follow=True)

    assert response.status_code == 200
    assert is_paused("default", "email")
    assert list(Pause.objects.values_list("queue_name", flat=True)) == ["email"]
    assert listed(superuser.get(PAUSES)) == [Pause.objects.get().pk]


def test_adding_a_pause_of_a_paused_queue_is_refused_by_the_form(superuser):
    pause_queue("default", "email")

    response = superuser.post(PAUSE_ADD, {"queue_name": "email"})

    assert response.status_code == 200  # the form again, with its error
    assert response.context["adminform"].form.errors
    assert Pause.objects.count() == 1


def test_deleting_a_pause_resumes_the_queue(superuser):
    pause_queue("default", "email")
    pause = Pause.objects.get()

    delete = reverse("admin:dj_queue_pause_delete", args=[pause.pk])
    response = superuser.post(delete, {"post": "yes"}, follow=True)

    assert response.status_code == 200
    assert not is_paused("default", "email")


@pytest.mark.parametrize("action", ["resume_selected", "delete_selected"])
def test_resume_and_delete_selected_pauses_resume_the_queues(superuser, action):
    for name in ("a", "b", "c"):
        pause_queue("default", name)
    pks = Pause.objects.filter(queue_name__in=["a", "b"]).values_list("pk", flat=True)

    run_action(superuser, PAUSES, action, list(pks), post="yes")

    assert [is_paused("default", name) for name in ("a", "b", "c")] == [False, False, True]


def test_a_pause_cannot_be_edited(superuser):
    pause_queue("default", "email")
    pause = Pause.objects.get()
    change = reverse("admin:dj_queue_pause_change", args=[pause.pk])

    assert superuser.get(change).status_code == 200
    assert superuser.post(change, {"queue_name": "other"}).status_code == 403
    assert list(Pause.objects.values_list("queue_name", flat=True)) == ["email"]


@pytest.mark.parametrize(
    "name",
    [
        "readyexecution",
        "scheduledexecution",
        "claimedexecution",
        "blockedexecution",
        "recurringtask",
        "semaphore",
    ],
)
def test_other_changelists_render_and_add_nothing(superuser, jobs, name):
    assert superuser.get(reverse(f"admin:dj_queue_{name}_changelist")).status_code == 200
    assert superuser.get(reverse(f"admin:dj_queue_{name}_add")).status_code == 403


@pytest.mark.parametrize(
    ("url", "actions"),
    [
        (
            JOBS,
            [
                "cancel",
                "retry_failed",
                "discard_failed",
                "discard_waiting",
                "release_blocked",
                "pause_queues",
                "resume_queues",
            ],
        ),
        (FAILED, ["retry_failed", "discard_failed"]),
        (reverse("admin:dj_queue_blockedexecution_changelist"), ["release_selected"]),
        (PAUSES, ["delete_selected", "resume_selected"]),
    ],
)
def test_actions_offered_to_a_superuser(superuser, url, actions):
    form = superuser.get(url).context["action_form"]

    assert [name for name, _ in form.fields["action"].choices if name] == actions


def test_read_only_lists_offer_no_action(superuser, worker_process):
    for name in ("process", "readyexecution", "claimedexecution", "semaphore"):
        response = superuser.get(reverse(f"admin:dj_queue_{name}_changelist"))
        assert response.context["action_form"] is None, name


# -- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [JOBS, FAILED, PROCESSES, PAUSES])
def test_staff_without_permissions_gets_403(jobs, url):
    assert staff_client().get(url).status_code == 403


@pytest.mark.parametrize(
    ("url", "action"),
    [
        (JOBS, "cancel"),
        (JOBS, "retry_failed"),
        (JOBS, "discard_failed"),
        (JOBS, "discard_waiting"),
        (JOBS, "pause_queues"),
        (FAILED, "retry_failed"),
        (FAILED, "discard_failed"),
    ],
)
def test_staff_without_permissions_cannot_run_actions(jobs, url, action):
    pks = (
        list(jobs.values())
        if url == JOBS
        else list(FailedExecution.objects.values_list("pk", flat=True))
    )
    before = snapshot()

    response = run_action(staff_client(), url, action, pks)

    assert response.status_code == 403
    assert snapshot() == before
    assert not Pause.objects.exists()


@pytest.mark.parametrize(
    ("url", "action", "permission"),
    [
        (JOBS, "retry_failed", "view_job"),
        (JOBS, "discard_waiting", "view_job"),
        (JOBS, "cancel", "view_job"),
        (FAILED, "discard_failed", "view_failedexecution"),
    ],
)
def test_staff_who_may_only_view_cannot_run_actions(jobs, url, action, permission):
    client = staff_client(permission)
    pks = (
        list(jobs.values())
        if url == JOBS
        else list(FailedExecution.objects.values_list("pk", flat=True))
    )
    before = snapshot()

    page = client.get(url)
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action is offered
    response = run_action(client, url, action, pks)

    assert response.status_code == 200
    assert snapshot() == before


def test_staff_who_may_only_view_pauses_cannot_resume_or_add(jobs):
    pause_queue("default", "email")
    client = staff_client("view_pause")
    pk = Pause.objects.get().pk

    assert client.get(PAUSES).status_code == 200
    run_action(client, PAUSES, "resume_selected", [pk])
    assert client.post(PAUSE_ADD, {"queue_name": "other"}).status_code == 403

    assert is_paused("default", "email")
    assert not is_paused("default", "other")


# -- the queue database ------------------------------------------------------------------------


@pytest.mark.django_db(databases=["default", "queue"])
def test_admin_reads_and_acts_on_the_queue_database(superuser):
    separate = settings.TASKS["separate"]
    with override_settings(TASKS={"default": separate}):
        queue_jobs = Job.objects.using("queue")
        job_id = uuid.UUID(add.enqueue(1, 2).id)
        assert queue_jobs.filter(pk=job_id).exists()
        assert not Job.objects.using("default").exists()

        assert listed(superuser.get(JOBS)) == [job_id]
        assert listed(superuser.get(JOBS, {"state": "ready"})) == [job_id]
        run_action(superuser, JOBS, "pause_queues", [job_id])
        assert is_paused("queue", "default")
        run_action(superuser, JOBS, "discard_waiting", [job_id])
        assert not queue_jobs.exists()
        assert_invariants("queue")


def test_module_imports_without_the_admin_installed(tmp_path):
    script = (
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['dj_queue'], DATABASES={'default': {"
        "'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}},"
        " TASKS={'default': {'BACKEND': 'dj_queue.backend.DjQueueBackend'}})\n"
        "django.setup()\n"
        "import dj_queue.admin\n"
        "print('ok')\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_recurring_tasks_list_shows_kind_next_run_and_the_last_job(superuser):
    from dj_queue.operations.recurring import fire, sync_static_tasks
    from dj_queue.recurring import RecurringDefinition

    sync_static_tasks(
        "default",
        [
            RecurringDefinition(
                key="nightly",
                task_path="tests.taskapp.tasks.add",
                schedule="0 3 * * *",
                args=[1, 2],
            )
        ],
    )
    slot = timezone.now().replace(microsecond=0)
    job_id = fire("default", "default", "nightly", slot)

    response = superuser.get(reverse("admin:dj_queue_recurringtask_changelist"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "nightly" in page and "static" in page and "0 3 * * *" in page
    assert reverse("admin:dj_queue_job_change", args=[job_id]) in page
    row = RecurringTask.objects.get(key="nightly")
    detail = superuser.get(reverse("admin:dj_queue_recurringtask_change", args=[row.pk]))
    assert detail.status_code == 200
    assert "next run" in detail.content.decode().lower()
