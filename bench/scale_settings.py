"""Settings for the runtimes of ``bench/scale_out.py``: bench/settings.py, with the
dj_queue OPTIONS replaced by the JSON in ``DJ_QUEUE_BENCH_OPTIONS`` when it is set
(so worker options the script is given reach every node)."""

import json
import os

from bench.settings import *  # noqa: F403
from bench.settings import DJ_QUEUE_OPTIONS, TASKS

if os.environ.get("DJ_QUEUE_BENCH_OPTIONS"):
    DJ_QUEUE_OPTIONS = json.loads(os.environ["DJ_QUEUE_BENCH_OPTIONS"])
    TASKS = {**TASKS, "default": {**TASKS["default"], "OPTIONS": DJ_QUEUE_OPTIONS}}
