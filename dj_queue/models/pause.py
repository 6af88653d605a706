from django.db import models

from .constraints import QUEUE_NAME_MAX_LENGTH


class Pause(models.Model):
    """A paused queue: workers claim nothing from it while this row exists."""

    queue_name = models.CharField(max_length=QUEUE_NAME_MAX_LENGTH, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_pause"

    def __str__(self) -> str:
        return self.queue_name
