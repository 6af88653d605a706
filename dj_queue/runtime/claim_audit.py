"""Claims a live worker holds in the table but not in memory, found and given back.

A database error can hide a claim: the server commits the claim but the reply
is lost (a killed session, a restart at the wrong moment), or a give-back of
buffered jobs fails. The worker then holds a claim it does not know of. Nothing
else would ever settle it: its process is alive and heartbeating, so no
pruning comes, and the job would wait until the worker stops.

After any database error the worker compares the claims its process holds with
the jobs it knows (running, buffered, outcomes not yet recorded). A claim seen
unknown on two checks a second apart is given back to its queue, its attempt
taken back: seen only once, it may be a claim a thread made an instant ago and
has not shown yet.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from ..models import Job
from ..operations.claims import held_claims, unclaim_jobs

logger = logging.getLogger("dj_queue")

# Seconds between two checks while a claim is in doubt.
CHECK_INTERVAL = 1.0


class ClaimAudit:
    def __init__(self, alias: str, process_id: int, worker_name: str) -> None:
        self.alias = alias
        self.process_id = process_id
        self.worker_name = worker_name
        self._in_doubt = False
        self._suspects: set[uuid.UUID] = set()
        self._next_check = 0.0

    def doubt(self) -> None:
        """A database error happened: a claim may have committed unseen."""
        self._in_doubt = True

    @property
    def due(self) -> bool:
        return (self._in_doubt or bool(self._suspects)) and time.monotonic() >= self._next_check

    def check(self, known: Callable[[], set[uuid.UUID]]) -> int:
        """Compare the table with ``known()`` (asked before and after reading it,
        so a job passing from one state to the next is seen in one of them) and
        give back the claims unknown twice. Returns how many were given back."""
        self._next_check = time.monotonic() + CHECK_INTERVAL
        self._in_doubt = False
        before = known()
        held = held_claims(self.alias, self.process_id)
        unknown = held - before - known()
        confirmed = unknown & self._suspects
        self._suspects = unknown - confirmed
        if not confirmed:
            return 0
        jobs = list(Job.objects.using(self.alias).filter(pk__in=confirmed))
        given_back = unclaim_jobs(self.alias, self.process_id, jobs)
        logger.warning(
            "worker %s gave back %d job(s) it held without knowing: a database error "
            "hid their claim",
            self.worker_name,
            given_back,
        )
        return given_back
