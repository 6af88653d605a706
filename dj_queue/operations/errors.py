"""``JobError``: what one failed attempt of a job leaves behind."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from ..retries import class_path, lineage


@dataclass(frozen=True, slots=True)
class JobError:
    """What one failed attempt left behind."""

    exception_class_path: str
    message: str
    traceback: str
    # The class paths of the exception and its bases, which a retry policy's
    # ``retry_on`` is matched against; the class path alone when not known.
    lineage: tuple[str, ...] = ()
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_exception(cls, exc: BaseException) -> JobError:
        kind = type(exc)
        try:
            message = str(exc)
        except Exception:
            message = f"<unprintable {kind.__qualname__}>"
        return cls(
            exception_class_path=class_path(kind),
            message=_storable(message),
            traceback=_storable("".join(traceback.format_exception(exc))),
            lineage=lineage(kind),
            exception=exc,
        )

    @property
    def class_lineage(self) -> tuple[str, ...]:
        return self.lineage or (self.exception_class_path,)

    def as_task_error(self) -> dict[str, str]:
        return {"exception_class_path": self.exception_class_path, "traceback": self.traceback}


def _storable(text: str) -> str:
    """``text`` with what no database can store (NUL, lone surrogates) escaped,
    so that recording an error can never fail on the error's own text."""
    text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
