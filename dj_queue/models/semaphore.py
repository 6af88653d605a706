from django.db import models

from .constraints import CONCURRENCY_KEY_MAX_LENGTH


class Semaphore(models.Model):
    """Remaining capacity of one concurrency key."""

    key = models.CharField(max_length=CONCURRENCY_KEY_MAX_LENGTH, unique=True)
    value = models.PositiveIntegerField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "dj_queue_semaphore"
        indexes = [models.Index(fields=["expires_at"], name="dj_queue_semaphore_expiry")]

    def __str__(self) -> str:
        return f"{self.key} ({self.value})"
