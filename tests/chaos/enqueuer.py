"""One of many processes enqueueing at once:
``python -m tests.chaos.enqueuer COUNT SECONDS OUT``.

Enqueues COUNT ``chaos_step(seconds=SECONDS)`` jobs one by one and appends each returned id to
OUT as soon as enqueue() returned, so the driver knows every job that was
promised to exist; a refused enqueue is written as ``error <class>``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from tests.taskapp.chaos import chaos_step  # noqa: E402


def main(count: int, seconds: float, out_path: str) -> None:
    fd = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    for _ in range(count):
        try:
            result = chaos_step.enqueue(seconds=seconds)
        except Exception as exc:
            os.write(fd, f"error {type(exc).__name__}\n".encode())
            continue
        os.write(fd, f"{result.id}\n".encode())
    os.close(fd)


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
