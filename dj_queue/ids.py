"""Identifiers for jobs and runtime processes."""

import os
import secrets
import time
import uuid
from collections.abc import Iterable


def new_job_id() -> uuid.UUID:
    """A time-ordered UUID (version 7).

    Job ids are made in Python so that a bulk insert knows every id without
    ``RETURNING`` (MySQL has none), and time order keeps the primary-key index
    appending at its right edge instead of splitting pages at random.
    """
    millis = time.time_ns() // 1_000_000
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= int.from_bytes(os.urandom(10)) & ((1 << 80) - 1)
    value &= ~(0xF << 76)
    value |= 0x7 << 76  # version
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 4122 variant
    return uuid.UUID(int=value)


def parse_job_id(value: object) -> uuid.UUID | None:
    """The job id named by ``value``, or None when it cannot be one."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def parse_job_ids(values: Iterable[object]) -> list[uuid.UUID]:
    """The job ids named by ``values``; JobStateError for one that cannot be."""
    from .exceptions import JobStateError

    parsed = []
    for value in values:
        job_id = parse_job_id(value)
        if job_id is None:
            raise JobStateError(f"{value!r} is not a dj_queue job id.")
        parsed.append(job_id)
    return parsed


def new_process_name(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(6)}"
