from dj_queue.contrib.gunicorn import post_fork, worker_exit  # noqa: F401

preload_app = True
