"""A worker's finished jobs, recorded in batches by its own loop.

Threads hand each outcome over and go on to their next job at once; the
worker's loop records every outcome handed over within ``completion_window``
in one transaction, together with the claim of its next jobs, and only then
sends ``task_finished``. A process that dies before a batch is recorded leaves
those jobs claimed, and they are recovered like any claimed job.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from ..concurrency import ConcurrencyLimit
from ..db import get_driver
from ..models import Job
from ..operations.claims import Claimant
from ..operations.jobs import JobError, complete_job, fail_job
from ..operations.outcomes import Failure, Recorded, Success, record_outcomes
from .connections import drop_broken_connections
from .execution import Outcome, claim_lost, report_failure, report_success

logger = logging.getLogger("dj_queue")


class OutcomeRecorder:
    """The outcomes a worker's threads handed over and not yet recorded.

    ``on_first`` is called when an outcome arrives to an empty batch: it wakes
    the worker's loop, which then waits out the window for more."""

    def __init__(
        self,
        alias: str,
        claimant: Claimant,
        *,
        preserve: bool,
        on_first: Callable[[], None],
    ) -> None:
        self.alias = alias
        self.claimant = claimant
        self.preserve = preserve
        self._on_first = on_first
        self._lock = threading.Lock()
        self._pending: list[Outcome] = []
        self._first_at = 0.0

    def hand_over(self, outcome: Outcome) -> None:
        with self._lock:
            self._pending.append(outcome)
            first = len(self._pending) == 1
            if first:
                self._first_at = time.monotonic()
        if first:
            self._on_first()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def pending_job_ids(self) -> set[uuid.UUID]:
        with self._lock:
            return {outcome.job.id for outcome in self._pending}

    def hold_left(self, window: float) -> float:
        """Seconds until the oldest pending outcome has waited ``window``; 0 if none waits."""
        with self._lock:
            if not self._pending:
                return 0.0
            return max(0.0, self._first_at + window - time.monotonic())

    def flush(self, claim: int = 0) -> list[Job]:
        """Record every pending outcome and claim up to ``claim`` jobs, in one
        transaction; report each outcome once committed. Returns the jobs claimed.

        If the database is unreachable the outcomes stay pending and the error
        goes to the caller, which tries again. If it refuses the batch (a value
        it cannot store), each outcome is recorded on its own, so that only the
        job at fault fails."""
        with self._lock:
            outcomes, self._pending = self._pending, []
        successes = [o for o in outcomes if o.exception is None]
        failures = [o for o in outcomes if o.exception is not None]
        errors = {o.job.id: JobError.from_exception(o.exception) for o in failures if o.exception}
        try:
            recorded = record_outcomes(
                self.alias,
                self.claimant,
                [Success(o.job.id, o.return_value, _limit(o)) for o in successes],
                [Failure(o.job.id, errors[o.job.id], _limit(o), o.backoff) for o in failures],
                preserve=self.preserve,
                claim=claim,
            )
        except (OperationalError, InterfaceError) as exc:
            drop_broken_connections()
            if connections[self.alias].connection is None or get_driver(self.alias).is_transient(
                exc
            ):
                self._put_back(outcomes)
                raise
            recorded = self._one_by_one(successes, failures, errors)
        except DatabaseError:
            recorded = self._one_by_one(successes, failures, errors)
        self._report(successes, failures, errors, recorded)
        return recorded.claimed

    def _put_back(self, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            self._pending[:0] = outcomes
            self._first_at = time.monotonic()

    def _one_by_one(
        self,
        successes: Sequence[Outcome],
        failures: list[Outcome],
        errors: dict[uuid.UUID, JobError],
    ) -> Recorded:
        process_id = self.claimant.process_id
        completed = set()
        for outcome in successes:
            job = outcome.job
            try:
                if complete_job(
                    self.alias,
                    job.id,
                    process_id,
                    outcome.return_value,
                    preserve=self.preserve,
                    limit=ConcurrencyLimit.of_job(job),
                ):
                    completed.add(job.id)
            except DatabaseError as exc:  # the database refused to store the value
                outcome.exception = exc
                errors[job.id] = JobError.from_exception(exc)
                failures.append(outcome)
        failed = {
            outcome.job.id: fail_job(
                self.alias,
                outcome.job.id,
                process_id,
                errors[outcome.job.id],
                limit=ConcurrencyLimit.of_job(outcome.job),
                backoff=outcome.backoff,
            )
            for outcome in failures
        }
        return Recorded(frozenset(completed), failed)

    def _report(
        self,
        successes: Sequence[Outcome],
        failures: Sequence[Outcome],
        errors: dict[uuid.UUID, JobError],
        recorded: Recorded,
    ) -> None:
        for outcome in successes:
            if outcome.exception is not None:
                continue  # failed after all: reported with the failures
            if outcome.job.id not in recorded.completed:
                claim_lost(outcome.job)
            elif outcome.task_result is not None and outcome.sender is not None:
                report_success(outcome.task_result, outcome.sender, outcome.return_value)
        for outcome in failures:
            exc = outcome.exception
            assert exc is not None
            try:
                # Raised again so that receivers see it as the active exception.
                raise exc
            except BaseException:
                report_failure(
                    outcome.job,
                    exc,
                    errors[outcome.job.id],
                    recorded.failed.get(outcome.job.id),
                    outcome.task_result,
                    outcome.sender,
                )


def _limit(outcome: Outcome) -> ConcurrencyLimit | None:
    return ConcurrencyLimit.of_job(outcome.job)
