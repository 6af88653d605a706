"""``manage.py dj_queue_prune``: delete finished jobs older than a cutoff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from dj_queue.operations.jobs import delete_finished_jobs, finished_jobs

from ._base import BackendCommand, positive_number


class Command(BackendCommand):
    help = (
        "Delete finished jobs older than --older-than seconds, in batches. Successful jobs "
        "only, unless --include-failed; waiting and running jobs are never touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--older-than",
            type=positive_number("--older-than"),
            required=True,
            metavar="SECONDS",
            help="Delete jobs that finished more than this many seconds ago.",
        )
        parser.add_argument("--task-path", help="Only jobs of this task (its dotted path).")
        parser.add_argument(
            "--include-failed", action="store_true", help="Delete failed jobs as well."
        )
        parser.add_argument(
            "--batch-size",
            type=positive_number("--batch-size", whole=True),
            default=1000,
            help="Jobs deleted per transaction (default: %(default)s).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias = self.database_alias(options["backend"])
        cutoff = timezone.now() - timedelta(seconds=options["older_than"])
        selection = {
            "finished_before": cutoff,
            "task_path": options["task_path"],
            "include_failed": options["include_failed"],
        }
        kinds = "finished" if options["include_failed"] else "successful"
        scope = f" of {options['task_path']}" if options["task_path"] else ""
        if options["dry_run"]:
            count = finished_jobs(alias, **selection).count()
            self.stdout.write(
                f"would delete {count} {kinds} job(s){scope} older than {options['older_than']:g}s"
            )
            return
        try:
            deleted = delete_finished_jobs(alias, batch_size=options["batch_size"], **selection)
        except KeyboardInterrupt as exc:  # batches already committed stay deleted
            raise CommandError(
                "interrupted; the batches before the interruption are deleted"
            ) from exc
        self.stdout.write(
            f"deleted {deleted} {kinds} job(s){scope} older than {options['older_than']:g}s"
        )
