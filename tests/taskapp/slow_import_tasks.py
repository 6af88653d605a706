"""A task module that takes a while to import, for the concurrent-import test."""

import time

from django.tasks import task

time.sleep(0.3)


@task
def defined_late():
    return "late"
