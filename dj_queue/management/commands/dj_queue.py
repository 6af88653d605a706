"""``manage.py dj_queue``: run the dj_queue runtime for one backend alias."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import connections

from dj_queue import __version__
from dj_queue.config import MODES
from dj_queue.config_loading import CommandLine, load_config, skip_recurring
from dj_queue.exceptions import ConfigurationError, InvalidRecurringTask
from dj_queue.recurring import static_definitions
from dj_queue.runtime.supervisor import Supervisor, Topology, build_supervisor

from ._base import BackendCommand


class Command(BackendCommand):
    help = "Run the dj_queue supervisor: workers, dispatchers and the scheduler."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--mode",
            choices=MODES,
            help="Run actors as forked processes or as threads (overrides DJ_QUEUE_MODE "
            "and the configured mode).",
        )
        parser.add_argument(
            "--config",
            metavar="PATH",
            help="YAML file of backend options, merged over TASKS (overrides DJ_QUEUE_CONFIG).",
        )
        parser.add_argument("--only-work", action="store_true", help="Run workers only.")
        parser.add_argument("--only-dispatch", action="store_true", help="Run dispatchers only.")
        parser.add_argument(
            "--skip-recurring",
            action="store_true",
            help="Run no scheduler (also DJ_QUEUE_SKIP_RECURRING=1).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["backend"]
        backend = self.backend(alias)
        command_line = CommandLine(
            config_path=options["config"],
            mode=options["mode"],
            skip_recurring=options["skip_recurring"],
        )
        try:
            config = load_config(alias, backend.options, command_line=command_line)
            topology = Topology.from_flags(
                only_work=options["only_work"],
                only_dispatch=options["only_dispatch"],
                skip_recurring=skip_recurring(command_line=command_line),
            )
        except (ConfigurationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if config.database_alias not in connections.settings:
            raise CommandError(
                f"database_alias {config.database_alias!r} (TASKS[{alias!r}]['OPTIONS'] or the "
                "YAML file) is not in DATABASES."
            )

        if topology.scheduler:
            # A recurring task that cannot run refuses the start, not the first firing.
            try:
                static_definitions(backend, config.recurring)
            except InvalidRecurringTask as exc:
                raise CommandError(str(exc)) from exc
        supervisor = build_supervisor(backend_alias=alias, config=config, topology=topology)
        self.stdout.write(self._banner(alias, supervisor))
        self.stdout.flush()
        # Whatever this thread opened while starting is not the runtime's to keep.
        connections.close_all()
        status = supervisor.start()
        if status:
            sys.exit(status)

    def _banner(self, alias: str, supervisor: Supervisor) -> str:
        config = supervisor.config
        engine = connections[config.database_alias].settings_dict["ENGINE"].rsplit(".", 1)[-1]
        topology = supervisor.topology
        parts = [
            f"dj_queue {__version__}: backend {alias!r} on database "
            f"{config.database_alias!r} ({engine}), mode {config.mode}, pid {os.getpid()}"
        ]
        if topology.workers:
            for worker in config.workers:
                parts.append(
                    f"  workers: {worker.processes} x {worker.threads} threads on "
                    f"{', '.join(worker.queues)} (poll {worker.polling_interval:g}s)"
                )
        if topology.dispatchers:
            for dispatcher in config.dispatchers:
                parts.append(
                    f"  dispatcher: batches of {dispatcher.batch_size} "
                    f"(poll {dispatcher.polling_interval:g}s)"
                )
        parts.append(f"  scheduler: {'on' if supervisor.runs_scheduler else 'off'}")
        return "\n".join(parts)
