from django.db import models

from ..ids import new_job_id
from .constraints import (
    CONCURRENCY_KEY_MAX_LENGTH,
    QUEUE_NAME_MAX_LENGTH,
    TASK_PATH_MAX_LENGTH,
    UNIQUE_KEY_MAX_LENGTH,
    priority_range,
)


class Job(models.Model):
    """The durable record of one enqueued task call.

    Where the job stands is told by exactly one execution row (ready, scheduled,
    claimed, blocked or failed) or, with none of them, by ``finished_at``.
    """

    id = models.UUIDField(primary_key=True, default=new_job_id, editable=False)
    backend_alias = models.CharField(max_length=64)
    task_path = models.CharField(max_length=TASK_PATH_MAX_LENGTH)
    queue_name = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH)
    priority = models.SmallIntegerField(default=0)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    run_after = models.DateTimeField(null=True, blank=True)
    # A concurrency-limited job carries its task's rule, so that every later
    # transition (promotion, release, recovery, maintenance) can apply it
    # without resolving the task. All four are set together, or none.
    concurrency_key = models.CharField(max_length=CONCURRENCY_KEY_MAX_LENGTH, null=True, blank=True)
    concurrency_limit = models.PositiveIntegerField(null=True, blank=True)
    concurrency_duration = models.FloatField(null=True, blank=True)
    concurrency_on_conflict = models.CharField(max_length=8, null=True, blank=True)
    # The retry policy it was enqueued with (RetryPolicy.stored()); NULL: never retried.
    retry_policy = models.JSONField(null=True, blank=True)
    # Seconds one attempt may run; NULL: no limit.
    timeout = models.FloatField(null=True, blank=True)
    # Held while the job waits or runs, and with unique_for until unique_until;
    # cleared in the transaction that ends the job. Unique: a second job with
    # the same key cannot be written (NULLs never conflict).
    unique_key = models.CharField(
        max_length=UNIQUE_KEY_MAX_LENGTH, null=True, blank=True, unique=True
    )
    unique_until = models.DateTimeField(null=True, blank=True)

    enqueued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Names of the runtime processes that picked the job up, one per attempt.
    worker_ids = models.JSONField(default=list)
    # Every error of every attempt, oldest first, as {exception_class_path, traceback}.
    errors = models.JSONField(default=list)
    return_value = models.JSONField(null=True, blank=True)

    class Meta:
        db_table = "dj_queue_job"
        constraints = [priority_range("dj_queue_job_priority_range")]
        indexes = [
            models.Index(fields=["finished_at"], name="dj_queue_job_finished"),
            # On PostgreSQL the pattern operator class lets LIKE 'prefix%' (the
            # admin's task path search) use this index under any collation; it
            # serves equality on task_path (pruning by task) as well. Other
            # databases ignore operator classes.
            models.Index(
                fields=["task_path", "finished_at"],
                name="dj_queue_job_task_finished",
                opclasses=["varchar_pattern_ops", "timestamptz_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} [{self.id}]"
