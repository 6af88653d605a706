"""One table per live job state.

Each table holds at most one row per job (a unique job column), and a job has at
most one row across all of them: the operations layer moves a job from one table
to the next inside a single transaction. Ready, scheduled and blocked rows copy
the job's queue and priority so the hot queries never touch the jobs table.
"""

from django.db import models

from .constraints import CONCURRENCY_KEY_MAX_LENGTH, QUEUE_NAME_MAX_LENGTH
from .job import Job
from .process import Process


class ReadyExecution(models.Model):
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="ready_execution")
    queue_name = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH)
    priority = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_ready_execution"
        indexes = [
            # Claim order inside one queue (or a prefix range) and across all queues.
            models.Index(
                fields=["queue_name", "-priority", "id"], name="dj_queue_ready_queue_order"
            ),
            models.Index(fields=["-priority", "id"], name="dj_queue_ready_order"),
            # The oldest ready job of a queue: its latency, without a scan.
            models.Index(fields=["queue_name", "created_at"], name="dj_queue_ready_queue_age"),
        ]


class ScheduledExecution(models.Model):
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="scheduled_execution")
    queue_name = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH)
    priority = models.SmallIntegerField(default=0)
    scheduled_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_scheduled_execution"
        indexes = [
            models.Index(fields=["scheduled_at", "-priority", "id"], name="dj_queue_scheduled_due"),
            # Bounded counts of one queue's scheduled jobs (the dashboard, metrics).
            models.Index(fields=["queue_name"], name="dj_queue_scheduled_queue"),
        ]


class ClaimedExecution(models.Model):
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="claimed_execution")
    # PROTECT: a process row is removed only after its claims were settled.
    process = models.ForeignKey(Process, on_delete=models.PROTECT, related_name="claims")
    created_at = models.DateTimeField()
    # Set by cancel_job: the worker holding the claim stops the job when it sees it.
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "dj_queue_claimed_execution"


class BlockedExecution(models.Model):
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="blocked_execution")
    queue_name = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH)
    priority = models.SmallIntegerField(default=0)
    concurrency_key = models.CharField(max_length=CONCURRENCY_KEY_MAX_LENGTH)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_blocked_execution"
        indexes = [
            models.Index(
                fields=["concurrency_key", "-priority", "id"], name="dj_queue_blocked_key_order"
            ),
            models.Index(fields=["expires_at", "concurrency_key"], name="dj_queue_blocked_expiry"),
            models.Index(fields=["queue_name"], name="dj_queue_blocked_queue"),
        ]


class FailedExecution(models.Model):
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="failed_execution")
    # The job's queue, copied like the waiting states' so that counting one
    # queue's failures reads this table's index alone.
    queue_name = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH, default="")
    exception_class = models.CharField(max_length=255)
    message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_failed_execution"
        indexes = [
            models.Index(fields=["created_at"], name="dj_queue_failed_created"),
            models.Index(fields=["queue_name"], name="dj_queue_failed_queue"),
        ]
