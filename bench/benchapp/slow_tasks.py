"""A task that takes a while, for the fairness burst of ``bench/scale_out.py``."""

import time

from django.tasks import task


@task()
def sleep_for(seconds: float) -> None:
    time.sleep(seconds)
