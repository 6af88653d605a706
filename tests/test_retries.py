"""Retry policies: declaring them, the backoff they compute, and the failure
transition that retries or fails a job (``dj_queue.operations.failures``)."""

from __future__ import annotations

import re
import uuid

import django
import pytest
from django.tasks import TaskResultStatus, task, task_backends
from django.tasks.exceptions import InvalidTask
from django.test import override_settings
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from dj_queue.concurrency import ConcurrencyLimit
from dj_queue.config import parse_options
from dj_queue.exceptions import ConfigurationError, ProcessExitError, ProcessPrunedError
from dj_queue.models import Job, ScheduledExecution, Semaphore
from dj_queue.operations.claims import claim_jobs
from dj_queue.operations.jobs import FailOutcome, JobError, fail_job, retry_failed_job
from dj_queue.operations.processes import deregister_process, register_process
from dj_queue.operations.scheduling import promote_due_jobs
from dj_queue.retries import RetryPolicy, lineage, options_for
from tests.conftest import tasks_setting
from tests.invariants import assert_invariants, state_of
from tests.taskapp.tasks import add, crash_never_retried, flaky, picky, with_backoff

WHERE = "TASKS['default']['OPTIONS']"


def raised(exc: BaseException) -> JobError:
    try:
        raise exc
    except BaseException as caught:
        return JobError.from_exception(caught)


# -- declaring ---------------------------------------------------------------------


def test_a_task_without_options_gets_the_backend_defaults():
    policy = options_for(add).over(RetryPolicy())
    assert policy == RetryPolicy()
    assert policy.stored() is None  # one attempt: nothing to store


def test_function_attributes_declare_a_policy():
    policy = options_for(picky).over(RetryPolicy())
    assert (policy.max_attempts, policy.delay, policy.retry_on) == (
        3,
        0.0,
        ("builtins.ValueError",),
    )
    assert policy.stored() == {
        "max_attempts": 3,
        "delay": 0.0,
        "max_delay": 3600.0,
        "jitter": True,
        "backoff": None,
        "retry_on": ["builtins.ValueError"],
    }


@pytest.mark.skipif(django.VERSION < (6, 1), reason="@task keyword arguments need Django 6.1")
def test_task_keyword_arguments_declare_a_policy():
    declared = task(max_attempts=5, retry_delay=2, retry_on=KeyError, timeout=30)(_twice)
    policy = options_for(declared).over(RetryPolicy(max_delay=60))
    assert (policy.max_attempts, policy.delay, policy.max_delay, policy.timeout) == (5, 2, 60, 30)
    assert policy.retry_on == ("builtins.KeyError",)


def _twice(x):
    return x * 2


@pytest.mark.parametrize(
    ("attribute", "value", "fragment"),
    [
        ("max_attempts", 0, "must be a whole number of at least 1"),
        ("max_attempts", 2.5, "must be a whole number"),
        ("retry_delay", -1, "must be a number of seconds 0 or more"),
        ("retry_max_delay", float("inf"), "must be a number of seconds"),
        ("timeout", 0, "must be a number of seconds above 0"),
        ("retry_jitter", "yes", "must be True or False"),
        ("retry_backoff", "tests.taskapp.tasks.no_such_function", "cannot be imported"),
        ("retry_backoff", "tests.taskapp.tasks.MARKER", "is not callable"),
        ("retry_on", "builtins.int", "must name exception classes"),
        ("retry_on", [], "must name at least one exception class"),
    ],
)
def test_a_bad_declaration_fails_at_the_task_line(monkeypatch, attribute, value, fragment):
    monkeypatch.setattr(undecorated, attribute, value, raising=False)
    with pytest.raises(InvalidTask, match=f"undecorated: {attribute} .*{re.escape(fragment)}"):
        task(undecorated)


@pytest.mark.django_db
def test_a_bad_attribute_set_late_fails_at_enqueue_and_in_the_system_check(monkeypatch):
    declared = task(undecorated)
    monkeypatch.setattr(undecorated, "max_attempts", -1, raising=False)
    with pytest.raises(InvalidTask, match="undecorated: max_attempts"):
        declared.enqueue()
    assert not Job.objects.exists()
    errors = task_backends["default"].check()
    assert any("max_attempts" in error.msg and error.id == "dj_queue.E003" for error in errors)


def undecorated():
    return None


def test_options_give_defaults_and_tasks_win():
    config = parse_options(
        {
            "retries": {"max_attempts": 4, "delay": 5, "max_delay": 50, "jitter": False},
            "timeout": 9,
        },
        WHERE,
    )
    defaults = config.default_retry_policy
    assert defaults == RetryPolicy(max_attempts=4, delay=5, max_delay=50, jitter=False, timeout=9)
    assert options_for(picky).over(defaults).max_attempts == 3
    assert options_for(picky).over(defaults).max_delay == 50


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"retries": {"max_attempts": 0}}, "['retries']['max_attempts']: must be a whole number"),
        ({"retries": {"delay": "soon"}}, "['retries']['delay']: must be a number of seconds"),
        ({"retries": {"jitter": 1}}, "['retries']['jitter']: expected true or false"),
        ({"retries": {"attempts": 3}}, "unknown option(s) 'attempts'"),
        ({"retries": 3}, "['retries']: expected a mapping"),
        ({"timeout": -2}, "['timeout']: must be a number of seconds above 0"),
    ],
)
def test_bad_options_name_the_key(options, fragment):
    with pytest.raises(ConfigurationError) as caught:
        parse_options(options, WHERE)
    assert fragment in str(caught.value)


# -- backoff -------------------------------------------------------------------------


@given(
    attempt=st.integers(min_value=1, max_value=200),
    delay=st.floats(min_value=0, max_value=100),
    max_delay=st.floats(min_value=0, max_value=10_000),
    jitter=st.booleans(),
)
def test_backoff_doubles_within_its_bounds(attempt, delay, max_delay, jitter):
    policy = RetryPolicy(max_attempts=3, delay=delay, max_delay=max_delay, jitter=jitter)
    exact = min(delay * 2 ** min(attempt - 1, 60), max_delay)
    seconds = policy.delay_after(attempt)
    if jitter:
        assert exact / 2 <= seconds <= exact
    else:
        assert seconds == exact


def test_a_backoff_function_decides_and_is_capped():
    policy = RetryPolicy(max_attempts=5, max_delay=10)
    assert policy.delay_after(3, None, lambda attempt, exc: attempt * 1.5) == 4.5
    assert policy.delay_after(3, None, lambda attempt, exc: 1e9) == 10
    # A function that fails or answers nonsense leaves the exponential default.
    for broken in (lambda a, e: 1 / 0, lambda a, e: "soon", lambda a, e: -1):
        assert 0.5 * 4 / 2 <= policy.delay_after(3, None, broken) <= 4


def test_retry_on_matches_the_exception_and_its_bases():
    policy = RetryPolicy(max_attempts=3, retry_on=("dj_queue.exceptions.ProcessExitError",))
    assert policy.should_retry(lineage(ProcessPrunedError), 1)
    assert not policy.should_retry(lineage(ValueError), 1)
    assert not policy.should_retry(lineage(ProcessExitError), 3)  # no attempt left
    assert RetryPolicy(max_attempts=2).should_retry(lineage(KeyError), 1)
    assert not RetryPolicy(max_attempts=2).should_retry(lineage(KeyboardInterrupt), 1)


def test_a_malformed_stored_policy_is_no_retry():
    assert RetryPolicy.of_row({"max_attempts": "many"}) == RetryPolicy()
    assert RetryPolicy.of_row([1, 2]) == RetryPolicy()
    assert RetryPolicy.of_row(None, 5).timeout == 5


# -- enqueueing ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_job_row_carries_its_policy_and_timeout(settings):
    settings.TASKS = tasks_setting(options={"retries": {"max_attempts": 2}, "timeout": 30})
    job = Job.objects.get(pk=add.enqueue(1, 2).id)
    assert job.retry_policy["max_attempts"] == 2
    assert job.timeout == 30
    job = Job.objects.get(pk=picky.enqueue("value").id)
    assert job.retry_policy["retry_on"] == ["builtins.ValueError"]


@pytest.mark.django_db
def test_bulk_enqueue_carries_each_policy():
    backend = task_backends["default"]
    results = backend.enqueue_all([(add, [1, 2], {}), (flaky, [1], {})])
    rows = dict(
        Job.objects.filter(pk__in=[r.id for r in results]).values_list("pk", "retry_policy")
    )
    assert rows[uuid.UUID(results[0].id)] is None
    assert rows[uuid.UUID(results[1].id)]["max_attempts"] == 3


# -- the failure transition --------------------------------------------------------------


@pytest.fixture
def worker(db):
    return register_process("default", kind="worker", name="w", backend_alias="default")


def claim(worker, result):
    (job,) = claim_jobs("default", process_id=worker.pk, worker_id="w", selectors=("*",), limit=1)
    assert str(job.id) == result.id
    return job


@pytest.mark.django_db
def test_a_failed_attempt_with_attempts_left_is_scheduled_again(worker):
    result = flaky.enqueue(5)
    job = claim(worker, result)
    before = timezone.now()

    assert fail_job("default", job.id, worker.pk, raised(ValueError("one"))) == FailOutcome.RETRYING

    scheduled = ScheduledExecution.objects.get(job_id=job.id)
    assert before <= scheduled.scheduled_at <= timezone.now()  # retry_delay 0
    fresh = flaky.get_backend().get_result(result.id)
    assert fresh.status == TaskResultStatus.READY
    assert fresh.attempts == 1
    assert [e.exception_class_path for e in fresh.errors] == ["builtins.ValueError"]
    assert fresh.finished_at is None
    assert_invariants()


@pytest.mark.django_db
def test_the_last_attempt_fails_and_retry_failed_job_grants_one_more(worker):
    result = flaky.enqueue(5)
    for attempt in (1, 2, 3):
        ScheduledExecution.objects.filter(job_id=result.id).update(scheduled_at=timezone.now())
        if attempt > 1:
            promote_due_jobs("default", batch_size=10)
        job = claim(worker, result)
        outcome = fail_job("default", job.id, worker.pk, raised(ValueError(str(attempt))))
        assert outcome == (FailOutcome.FAILED if attempt == 3 else FailOutcome.RETRYING)
    assert state_of(result.id) == "failed"
    fresh = flaky.get_backend().get_result(result.id)
    assert (fresh.status, fresh.attempts, len(fresh.errors)) == (TaskResultStatus.FAILED, 3, 3)

    retry_failed_job(result.id)
    job = claim(worker, result)
    assert fail_job("default", job.id, worker.pk, raised(ValueError("4"))) == FailOutcome.FAILED
    assert len(flaky.get_backend().get_result(result.id).errors) == 4
    assert_invariants()


@pytest.mark.django_db
def test_an_exception_outside_retry_on_fails_at_once(worker):
    result = picky.enqueue("type")
    job = claim(worker, result)
    assert fail_job("default", job.id, worker.pk, raised(TypeError("no"))) == FailOutcome.FAILED
    assert state_of(result.id) == "failed"


@pytest.mark.django_db
def test_a_lost_claim_changes_nothing(worker):
    result = flaky.enqueue(5)
    job = claim(worker, result)
    other = register_process("default", kind="worker", name="o", backend_alias="default")
    assert fail_job("default", job.id, other.pk, raised(ValueError("late"))) is None
    assert state_of(result.id) == "claimed"


@pytest.mark.django_db
def test_a_backoff_function_sets_the_retry_time(worker):
    result = with_backoff.enqueue()
    job = claim(worker, result)
    from tests.taskapp.tasks import linear_backoff

    failed_at = timezone.now()
    fail_job(
        "default", job.id, worker.pk, raised(ValueError("x")), now=failed_at, backoff=linear_backoff
    )
    scheduled = ScheduledExecution.objects.get(job_id=job.id)
    assert (scheduled.scheduled_at - failed_at).total_seconds() == pytest.approx(0.1)


@pytest.mark.django_db
def test_a_dead_process_s_claims_are_retried_by_their_policy(worker):
    retried = flaky.enqueue(5)
    not_retried = crash_never_retried.enqueue("unused")  # retry_on ValueError only
    single = add.enqueue(1, 1)
    for result in (retried, not_retried, single):
        claim(worker, result)

    assert deregister_process("default", worker.pk, reason="was killed by SIGKILL") == 3

    assert state_of(retried.id) == "scheduled"
    assert state_of(not_retried.id) == "failed"
    assert state_of(single.id) == "failed"
    fresh = flaky.get_backend().get_result(retried.id)
    assert fresh.errors[-1].exception_class_path == "dj_queue.exceptions.ProcessExitError"
    assert fresh.status == TaskResultStatus.READY
    assert_invariants()


@pytest.mark.django_db
def test_a_retried_limited_job_gives_its_slot_to_the_next(worker, settings):
    from tests.taskapp.tasks import limited_flaky

    first = limited_flaky.enqueue("k", 1, 0, "/dev/null")
    second = limited_flaky.enqueue("k", 2, 0, "/dev/null")
    assert state_of(second.id) == "blocked"
    job = claim(worker, first)

    outcome = fail_job(
        "default", job.id, worker.pk, raised(ValueError("x")), limit=ConcurrencyLimit.of_job(job)
    )

    assert outcome == FailOutcome.RETRYING
    assert state_of(first.id) == "scheduled"
    assert state_of(second.id) == "ready"
    assert Semaphore.objects.get(key="flaky:k").value == 0
    assert_invariants()


@pytest.mark.django_db
@override_settings(TASKS=tasks_setting(options={"retries": {"max_attempts": 2, "delay": 0}}))
def test_backend_defaults_retry_a_task_that_declares_nothing(worker):
    result = add.enqueue(1, 2)
    job = claim(worker, result)
    assert fail_job("default", job.id, worker.pk, raised(KeyError("k"))) == FailOutcome.RETRYING


@pytest.mark.django_db
def test_a_waiting_retry_counts_as_scheduled_and_the_admin_shows_it(worker, admin_client):
    from django.urls import reverse

    from dj_queue.api import QueueInfo

    result = with_backoff.enqueue()
    job = claim(worker, result)
    fail_job("default", job.id, worker.pk, raised(ValueError("first try")), backoff=lambda a, e: 60)

    figures = QueueInfo("default").figures()
    assert (figures["size"], figures["scheduled"]) == (0, 1)
    assert QueueInfo("default").scheduled == 1
    page = admin_client.get(reverse("admin:dj_queue_job_change", args=[result.id]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Next retry" in text and "attempt 1:" in text and "builtins.ValueError" in text
    assert "&quot;max_attempts&quot;: 3" in text
