# The README's gunicorn.conf.py, verbatim.
from dj_queue.contrib.gunicorn import post_fork, worker_exit  # noqa: F401
