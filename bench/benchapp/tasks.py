"""The task both systems run: nothing, so what is measured is the queue itself."""

from django.tasks import task


@task
def noop() -> None:
    return None
