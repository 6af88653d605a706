"""What dj_queue's operator commands share: naming the backend, checking numbers."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.tasks import task_backends
from django.tasks.exceptions import InvalidTaskBackend

from dj_queue.backend import DjQueueBackend
from dj_queue.exceptions import ConfigurationError


def positive_number(flag: str, *, whole: bool = False) -> Callable[[str], float]:
    """An argparse type for a number above 0, whose error names ``flag``."""

    def parse(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            kind = "whole number" if whole else "number"
            raise argparse.ArgumentTypeError(f"{flag} takes a {kind} above 0, not {text!r}")
        return value

    return parse


class BackendCommand(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--backend",
            default="default",
            help="Task backend alias in TASKS (default: %(default)s).",
        )

    def backend(self, alias: str) -> DjQueueBackend:
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
        return backend

    def database_alias(self, alias: str) -> str:
        try:
            return self.backend(alias).database_alias
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc
