from django.db import models

from .constraints import QUEUE_NAME_MAX_LENGTH, TASK_PATH_MAX_LENGTH, priority_range


class RecurringTask(models.Model):
    """A task enqueued on a cron schedule, from settings (static) or at runtime."""

    key = models.CharField(max_length=255, unique=True)
    task_path = models.CharField(max_length=TASK_PATH_MAX_LENGTH)
    schedule = models.CharField(max_length=255)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    queue_name = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH, null=True, blank=True)
    priority = models.SmallIntegerField(null=True, blank=True)
    description = models.TextField(blank=True)
    static = models.BooleanField(default=True)
    # The scheduled time of the latest slot fired: no slot up to it fires again,
    # even once its execution row has been cleaned up.
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_recurring_task"
        constraints = [priority_range("dj_queue_recurring_priority_range")]

    def __str__(self) -> str:
        return self.key


class RecurringExecution(models.Model):
    """One firing of a recurring task; the unique slot makes firing happen once."""

    task_key = models.CharField(max_length=255)
    run_at = models.DateTimeField()
    # No foreign key: pruning finished jobs must not have to touch this table.
    job_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_recurring_execution"
        constraints = [
            models.UniqueConstraint(fields=["task_key", "run_at"], name="dj_queue_recurring_slot")
        ]
        # Pruning deletes slot rows by the jobs it deletes.
        indexes = [models.Index(fields=["job_id"], name="dj_queue_recurring_job")]
