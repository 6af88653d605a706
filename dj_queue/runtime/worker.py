"""Workers claim ready jobs and run them on a pool of threads."""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

from django.db import DatabaseError

from ..concurrency import ConcurrencyLimit
from ..config import QueueConfig, WorkerConfig
from ..db import get_driver
from ..exceptions import JobCancelledError, JobTimeoutError
from ..models import Job
from ..operations.cancellation import cancel_requests
from ..operations.claims import Claimant, claim_jobs, unclaim_jobs
from ..operations.concurrency import give_back_slot
from ..operations.jobs import FailOutcome, JobError, fail_job
from ..signals import send_finished_signal
from .actor import Actor
from .attempts import Attempt, RunningAttempts
from .claim_audit import ClaimAudit
from .execution import ExecutionContext, execute_job
from .pool import ExecutionPool
from .recorder import OutcomeRecorder
from .silence import polling
from .wakeups import ReadyListener

logger = logging.getLogger("dj_queue")

# How soon a job held in a worker's buffer should start: with jobs that take
# longer than this on every thread, nothing is held beyond the busy threads.
PREFETCH_HORIZON = 0.02
# A buffered job that waited this long after all is given back to its queue.
STALE_AFTER = 0.25


class Worker(Actor):
    kind = "worker"

    def __init__(
        self,
        *,
        backend_alias: str,
        config: QueueConfig,
        worker: WorkerConfig,
        supervisor_id: int | None = None,
        retire_on_timeout: bool = False,
    ) -> None:
        super().__init__(backend_alias=backend_alias, config=config, supervisor_id=supervisor_id)
        self.worker = worker
        # In its own process (fork mode), a worker that had to stop an overrunning
        # attempt retires: code stuck where no exception reaches it ends with
        # the process, and the supervisor starts a fresh worker in its place.
        self.retire_on_timeout = retire_on_timeout
        self.attempts = RunningAttempts(self._give_back_slot)
        self._pool: ExecutionPool[Job] | None = None
        self.listener: ReadyListener | None = None
        # With a completion window, outcomes are recorded in batches by this loop.
        self.recorder: OutcomeRecorder | None = None
        # Set while the last claim took all it asked for (more work is likely):
        # a finishing job then wakes the claim loop.
        self._saturated = False
        # Set when buffered jobs waited too long, until a running job ends.
        self._buffer_paused = False
        self.audit: ClaimAudit | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "queues": list(self.worker.queues),
            "threads": self.worker.threads,
            "polling_interval": self.worker.polling_interval,
        }

    def _job_done(self) -> None:
        self._buffer_paused = False
        # Batching, the loop is woken only for a thread left without a job.
        if self._saturated and (self.recorder is None or self._pool_has_idle()):
            self.wake()

    def _pool_has_idle(self) -> bool:
        return self._pool is not None and self._pool.idle > 0

    def _starving(self) -> bool:
        """A thread is idle although ready jobs are likely waiting."""
        return self._saturated and self._pool_has_idle()

    def _on_error(self, exc: Exception, context: str) -> None:
        if isinstance(exc, DatabaseError) and self.audit is not None:
            self.audit.doubt()
        super()._on_error(exc, context)

    def _known_job_ids(self) -> set[uuid.UUID]:
        """The jobs this worker knows it holds: running, buffered, or finished
        with the outcome not recorded yet."""
        known = {job.id for job in self._pool.held()} if self._pool is not None else set()
        if self.recorder is not None:
            known |= self.recorder.pending_job_ids()
        return known

    def _pool_or_start(self) -> ExecutionPool[Job]:
        if self._pool is None:
            self._start_listener()
            self.audit = ClaimAudit(self.alias, self._process_id(), self.name)
            claimant = Claimant(
                process_id=self._process_id(),
                worker_id=self.name,
                selectors=self.worker.queues,
                skip_locked=self.config.use_skip_locked,
            )
            if self.worker.completion_window > 0:
                self.recorder = OutcomeRecorder(
                    self.alias,
                    claimant,
                    preserve=self.config.preserve_finished_jobs,
                    on_first=self.wake,
                )
            context = ExecutionContext(
                alias=self.alias,
                process_id=self._process_id(),
                preserve_finished_jobs=self.config.preserve_finished_jobs,
                stopping=lambda: self.stopping,
                claimant=claimant,
                claim_next=lambda: self._saturated and not self.stopping,
                attempts=self.attempts,
                hand_over=self.recorder.hand_over if self.recorder else None,
            )
            self._pool = ExecutionPool(
                self.worker.threads,
                lambda job: execute_job(job, context),
                self._job_done,
                name=self.name,
                # Batching, the loop claims for every thread at once.
                next_item=self._claim_next if self.recorder is None else lambda: None,
                buffer=self.worker.prefetch,
            )
        return self._pool

    def _claim_limit(self, pool: ExecutionPool[Job]) -> int:
        """How many jobs to claim now: one per idle thread, plus what the buffer may hold."""
        return max(0, pool.size + self._buffer_allowed(pool) - pool.accepted)

    def _buffer_allowed(self, pool: ExecutionPool[Job]) -> int:
        """Jobs held beyond the busy threads, so that none waits on a claim round
        trip: only as many as the threads are expected to start within
        PREFETCH_HORIZON, judged by how long recent jobs took. A job held here
        is one that another node cannot run; long jobs are not held at all."""
        mean = pool.mean_run_seconds
        if not pool.buffer or mean is None or self._buffer_paused:
            return 0
        return min(pool.buffer, int(PREFETCH_HORIZON * pool.size / max(mean, 1e-6)))

    def _claim(self, limit: int) -> list[Job]:
        with polling(self.config.silence_polling):
            return claim_jobs(
                self.alias,
                process_id=self._process_id(),
                worker_id=self.name,
                selectors=self.worker.queues,
                limit=limit,
                skip_locked=self.config.use_skip_locked,
            )

    def _claim_next(self) -> Job | None:
        """Called by a pool thread that just finished a job, for its next one.
        A failure here only sends the thread idle; the claim loop carries on."""
        if self.stopping or not self._saturated:
            return None
        try:
            jobs = self._claim(1)
        except DatabaseError as exc:
            self._on_error(exc, f"worker {self.name} claiming")
            return None
        return jobs[0] if jobs else None

    def step(self) -> None:
        pool = self._pool_or_start()
        self._stop_overdue()
        self._stop_cancelled()
        if self.stopping:
            return
        self._give_back_stale(pool)
        if self.audit is not None and self.audit.due:
            self.audit.check(self._known_job_ids)
        if self.recorder is not None:
            self._record_and_claim(pool, self.recorder)
            return
        limit = self._claim_limit(pool)
        if limit == 0:
            self._saturated = True
            self.sleep(self._wait())
            return
        jobs = self._claim(limit)
        for job in jobs:
            pool.submit(job)
        self._saturated = len(jobs) == limit
        if not self._saturated:
            self.sleep(self._wait())

    def _record_and_claim(self, pool: ExecutionPool[Job], recorder: OutcomeRecorder) -> None:
        """One round when batching: record the outcomes handed over, claim
        what the threads and the buffer can take, in one transaction; then
        wait for the next outcome (and the window after it), a wake-up or the
        polling interval."""
        limit = self._claim_limit(pool)
        if recorder.pending or limit:
            with polling(self.config.silence_polling):
                jobs = recorder.flush(limit)
            for job in jobs:
                pool.submit(job)
            self._saturated = len(jobs) == limit if limit else self._saturated
        if self._saturated and self._claim_limit(pool):
            return
        if not recorder.pending:
            self.sleep(self._wait())
        if self.stopping:
            # The stop's wake-up was spent on the sleep above: waiting out the
            # window now would outlast shutdown_timeout. Shutdown records it.
            return
        hold = recorder.hold_left(self.worker.completion_window)
        if hold and not self._starving():
            self.sleep(min(hold, self._until_deadline()))

    def _wait(self) -> float:
        """The polling interval, or less when an attempt's deadline comes sooner."""
        return min(self.worker.polling_interval, self._until_deadline())

    def _until_deadline(self) -> float:
        deadline = self.attempts.next_deadline()
        if deadline is None:
            return math.inf
        return max(0.0, deadline - time.monotonic()) + 0.01

    def _stop_overdue(self) -> None:
        """Fail each attempt past its deadline (retried if its policy allows)
        and stop its code; the attempt's own late outcome finds its claim gone."""
        for attempt in self.attempts.overdue():
            message = f"The attempt ran past its timeout of {attempt.timeout:g}s and was stopped."
            self._stop(attempt, JobTimeoutError(message), final=False)

    def _stop_cancelled(self) -> None:
        """Fail each running job whose cancel was requested (never retried) and
        stop its code. Asked only while something runs: one indexed read."""
        if not self.attempts.running():
            return
        try:
            requested = cancel_requests(self.alias, self._process_id())
        except DatabaseError as exc:
            # Asked again at the next round; the jobs run on meanwhile.
            self._on_error(exc, f"worker {self.name} reading cancel requests")
            return
        for attempt in self.attempts.take(requested):
            self._stop(
                attempt, JobCancelledError("The job was cancelled while it ran."), final=True
            )

    def _stop(self, attempt: Attempt, exc: Exception, *, final: bool) -> None:
        job = attempt.job
        try:
            # A limited job keeps its slot until its code has stopped.
            outcome = fail_job(
                self.alias, job.id, self._process_id(), JobError.from_exception(exc), final=final
            )
        except DatabaseError as error:
            # Tried again at the next round.
            self.attempts.watch_again(attempt)
            self._on_error(error, f"worker {self.name} stopping job {job.id}")
            return
        if outcome is not None:
            self.attempts.settled(attempt, slot_kept=ConcurrencyLimit.of_job(job) is not None)
        interrupted = self.attempts.interrupt(attempt, type(exc))
        logger.warning(
            "job %s (%s): %s %s%s",
            job.id,
            job.task_path,
            exc,
            {
                None: "It had already ended.",
                FailOutcome.RETRYING: "Retrying it.",
                FailOutcome.FAILED: "Failed it.",
            }[outcome],
            "" if interrupted or outcome is None else " Its thread did not stop yet.",
        )
        if outcome is FailOutcome.FAILED:
            send_finished_signal(self.backend_alias, job.id)
        if outcome is not None and self.retire_on_timeout and not self.retired:
            logger.warning("worker %s retiring to be replaced after stopping a job", self.name)
            self.retired = True
            self.stop()

    def _drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the jobs in flight, still stopping those
        that run past their own timeout meanwhile. Attempts stopped at their
        timeout are settled already: only the others are waited for."""
        assert self._pool is not None
        end = time.monotonic() + timeout
        while True:
            self._stop_overdue()
            self._stop_cancelled()
            left = end - time.monotonic()
            if left <= 0:
                return self._pool.wait_idle(0, still_busy=self.attempts.stuck)
            if self._pool.wait_idle(min(left, self._wait()), still_busy=self.attempts.stuck):
                return True

    def _give_back_slot(self, attempt: Attempt) -> None:
        limit = ConcurrencyLimit.of_job(attempt.job)
        if limit is None:
            return
        try:
            give_back_slot(self.alias, limit)
        except Exception as exc:
            # The slot expires after its concurrency_duration instead.
            self._on_error(exc, f"worker {self.name} giving back the slot of {limit.key!r}")

    def _start_listener(self) -> None:
        if self.config.listen_notify and get_driver(self.alias).supports_notify:
            self.listener = ReadyListener(
                self.alias, self.worker.queues, self.wake, self._stopping, f"{self.name}-listen"
            )
            self.listener.start()

    def shutdown(self) -> None:
        if self._pool is None:
            return
        timeout = self.config.shutdown_timeout
        self._pool.stop_starting()
        if not self._drain(timeout):
            self.clean_exit = False
            logger.warning(
                "worker %s still had jobs running after shutdown_timeout (%gs)",
                self.name,
                timeout,
            )
        self._give_back_unstarted(self._pool.take_unstarted())
        self._flush_last()
        self.attempts.give_back_stuck()
        self._pool.close()

    def _give_back_stale(self, pool: ExecutionPool[Job]) -> None:
        """Buffered jobs still waiting well past the horizon (the threads turned
        out busy with longer jobs) go back to their queue, where another node
        may take them; nothing is buffered again until a running job ends."""
        stale = pool.take_waiting_longer_than(STALE_AFTER)
        if stale:
            self._buffer_paused = True
            self._give_back_unstarted(stale)

    def _give_back_unstarted(self, jobs: list[Job]) -> None:
        try:
            unclaim_jobs(self.alias, self._process_id(), jobs)
        except DatabaseError as exc:
            # Left claimed: the deregistration fails them (or pruning, later).
            self._on_error(exc, f"worker {self.name} giving back unstarted jobs")

    def _flush_last(self) -> None:
        """Record the outcomes still pending, trying while the shutdown timeout lasts."""
        if self.recorder is None:
            return
        end = time.monotonic() + self.config.shutdown_timeout
        delay = 0.1
        while self.recorder.pending:
            try:
                self.recorder.flush()
            except DatabaseError as exc:
                self._on_error(exc, f"worker {self.name} recording its last outcomes")
                if time.monotonic() + delay > end:
                    logger.error(
                        "worker %s could not record %d job outcome(s) before stopping",
                        self.name,
                        self.recorder.pending,
                    )
                    return
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
