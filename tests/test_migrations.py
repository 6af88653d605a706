"""Migrations that move data: run backwards and forwards on the real database."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("dj_queue", "0006_job_unique_key")]
AFTER = [("dj_queue", "0007_dashboard_figures")]


def migrate(targets) -> object:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_failed_executions_get_their_jobs_queue():
    old = migrate(BEFORE)
    try:
        job_model = old.get_model("dj_queue", "Job")
        failed_model = old.get_model("dj_queue", "FailedExecution")
        now = timezone.now()
        for queue in ("mail", "reports"):
            job = job_model.objects.create(
                id=uuid.uuid4(),
                backend_alias="default",
                task_path="tests.taskapp.tasks.fail",
                queue_name=queue,
                enqueued_at=now,
                finished_at=now,
            )
            failed_model.objects.create(
                job_id=job.id, exception_class="builtins.ValueError", created_at=now
            )
    finally:
        new = migrate(AFTER)

    failed = new.get_model("dj_queue", "FailedExecution")
    assert sorted(failed.objects.values_list("queue_name", flat=True)) == ["mail", "reports"]
