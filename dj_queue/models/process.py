from django.db import models


class Process(models.Model):
    """A live runtime process (supervisor, worker, dispatcher or scheduler)."""

    class Kind(models.TextChoices):
        SUPERVISOR = "supervisor"
        WORKER = "worker"
        DISPATCHER = "dispatcher"
        SCHEDULER = "scheduler"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    name = models.CharField(max_length=255, unique=True)
    backend_alias = models.CharField(max_length=64)
    pid = models.IntegerField()
    hostname = models.CharField(max_length=255)
    metadata = models.JSONField(default=dict, blank=True)
    supervisor = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supervisees"
    )
    # Written with the database's clock, so hosts with skewed clocks agree.
    last_heartbeat_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_process"
        indexes = [models.Index(fields=["last_heartbeat_at"], name="dj_queue_process_heartbeat")]
        verbose_name_plural = "processes"

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid} on {self.hostname})"
