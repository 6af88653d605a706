"""``manage.py dj_queue``: run the dj_queue runtime for one backend alias."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend

from dj_queue.backend import DjQueueBackend
from dj_queue.exceptions import ConfigurationError
from dj_queue.runtime.supervisor import AsyncSupervisor, Topology


class Command(BaseCommand):
    help = "Run the dj_queue supervisor with its workers and dispatchers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backend",
            default="default",
            help="Task backend alias in TASKS to serve (default: %(default)s).",
        )
        parser.add_argument(
            "--only-work", action="store_true", help="Run workers only, no dispatchers."
        )
        parser.add_argument(
            "--only-dispatch", action="store_true", help="Run dispatchers only, no workers."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["backend"]
        try:
            backend = task_backends[alias]
        except InvalidTaskBackend as exc:
            raise CommandError(f"--backend {alias!r}: {exc}") from exc
        if not isinstance(backend, DjQueueBackend):
            raise CommandError(
                f"--backend {alias!r}: TASKS[{alias!r}]['BACKEND'] is "
                f"{type(backend).__module__}.{type(backend).__qualname__}, not "
                "dj_queue.backend.DjQueueBackend."
            )
        try:
            config = backend.config
            topology = Topology.from_flags(
                only_work=options["only_work"], only_dispatch=options["only_dispatch"]
            )
        except (ConfigurationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if config.database_alias not in connections.settings:
            raise CommandError(
                f"TASKS[{alias!r}]['OPTIONS']['database_alias'] is {config.database_alias!r}, "
                "which is not in DATABASES."
            )

        supervisor = AsyncSupervisor(backend_alias=alias, config=config, topology=topology)
        database = connections[config.database_alias].settings_dict
        self.stdout.write(
            f"dj_queue: backend {alias!r} on database {config.database_alias!r} "
            f"({database['ENGINE'].rsplit('.', 1)[-1]}), mode async, "
            f"workers {'on' if topology.workers else 'off'}, "
            f"dispatchers {'on' if topology.dispatchers else 'off'}"
        )
        self.stdout.flush()
        # Connections opened while starting up belong to this thread only; the
        # actors open their own.
        connections.close_all()
        status = supervisor.start()
        if status:
            sys.exit(status)
