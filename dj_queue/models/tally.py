from django.db import models

from .constraints import QUEUE_NAME_MAX_LENGTH


class FinishedTally(models.Model):
    """How many jobs of one backend and queue ended with ``status`` in one minute.

    Written in the transaction that ends the jobs (a row per batch and queue),
    so the figures are exact and outlive both restarts and the pruning of
    finished jobs. The dispatcher merges each ended minute's rows into one, and
    minutes older than the dashboard's window into a single row per queue and
    status whose ``minute`` is NULL: the table stays small, the sums unchanged.
    """

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    backend_alias = models.CharField(max_length=64)
    queue_name = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH)
    status = models.CharField(max_length=16, choices=Status.choices)
    # The first second of the minute (UTC); NULL: every minute before the window.
    minute = models.DateTimeField(null=True, blank=True)
    count = models.BigIntegerField()

    class Meta:
        db_table = "dj_queue_finished_tally"
        indexes = [
            # Covering: the hour's throughput is read from the index alone.
            models.Index(
                fields=["backend_alias", "minute", "status", "count"],
                name="dj_queue_tally_minute",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.backend_alias}/{self.queue_name} {self.status} {self.minute}: {self.count}"
