from django.db.models import CheckConstraint, Q
from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY

QUEUE_NAME_MAX_LENGTH = 128
TASK_PATH_MAX_LENGTH = 255
CONCURRENCY_KEY_MAX_LENGTH = 255
UNIQUE_KEY_MAX_LENGTH = 255


def priority_range(name: str) -> CheckConstraint:
    return CheckConstraint(
        condition=Q(priority__gte=TASK_MIN_PRIORITY) & Q(priority__lte=TASK_MAX_PRIORITY),
        name=name,
    )
