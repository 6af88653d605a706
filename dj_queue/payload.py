"""The JSON data contract for task arguments and return values.

Whatever is stored must come back equal, on every supported database:
``enqueue(...)`` and ``get_result(id)`` describe the same call. Values are
normalised the way ``django.tasks`` does it (tuples become lists, UTF-8 bytes
become text), then everything JSON or a database would change or refuse is
rejected with an error that names where it sits, before anything is written.
"""

import json
import math
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .exceptions import InvalidPayload

# MariaDB's JSON_VALID rejects documents nested more than 31 containers deep;
# the limit holds everywhere so that a call valid on one database is valid on all.
MAX_DEPTH = 31

_FIX = "Pass only JSON values: str, int, float, bool, None, lists and dicts with str keys."


def _text(value: str, where: str) -> str:
    if "\x00" in value:
        raise InvalidPayload(
            f"{where}: contains a NUL character (\\x00), which PostgreSQL cannot store "
            "in JSON. Remove it or encode the text (for example as base64)."
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidPayload(
                f"{where}: contains {value[exc.start : exc.end]!r}, a lone surrogate that "
                "is not valid UTF-8 and cannot be stored."
            ) from None
    return value


def _float(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise InvalidPayload(f"{where}: {value!r} is not a JSON number. {_FIX}")
    # PostgreSQL's jsonb keeps numbers as exact decimals and writes them back
    # without an exponent: 1e20 returns as the int 10**20, and 1.2345678901234567e19
    # as a different number. Refuse what would not come back as the same float.
    if "e" in repr(value):
        returned = json.loads(format(Decimal(repr(value)), "f"))
        if not isinstance(returned, float) or returned != value:
            raise InvalidPayload(
                f"{where}: the float {value!r} would come back from PostgreSQL as "
                f"{returned!r}. Pass it as an int or a string."
            )
    return value


def _normalize(value: Any, where: str, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        # Only a huge int pays for the check: str() is what JSON writes.
        if value.bit_length() > 14_000:
            try:
                str(value)
            except ValueError:
                raise InvalidPayload(
                    f"{where}: an integer of more than {sys.get_int_max_str_digits()} digits, "
                    f"which JSON cannot write. {_FIX}"
                ) from None
        return value
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, float):
        return _float(value, where)
    if isinstance(value, bytes):
        try:
            return _text(value.decode("utf-8"), where)
        except UnicodeDecodeError:
            raise InvalidPayload(f"{where}: bytes that are not UTF-8 text. {_FIX}") from None
    if isinstance(value, Mapping | Sequence):
        if depth >= MAX_DEPTH:
            raise InvalidPayload(
                f"{where}: nested more than {MAX_DEPTH} lists or dicts deep, which MariaDB "
                "cannot store. Flatten the structure."
            )
        if isinstance(value, Mapping):
            normalized = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidPayload(
                        f"{where}: key {key!r} is of type {type(key).__name__}; JSON keys are "
                        f"strings. {_FIX}"
                    )
                item_where = f"{where}[{key!r}]"
                normalized[_text(key, item_where)] = _normalize(item, item_where, depth + 1)
            return normalized
        return [_normalize(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise InvalidPayload(
        f"{where}: a value of type {type(value).__name__} is not a JSON value. {_FIX}"
    )


def normalize_payload(value: Any, where: str) -> Any:
    """``value`` as it will be stored and returned, or InvalidPayload naming what
    does not fit and where."""
    return _normalize(value, where, 0)


def normalize_arguments(args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    return normalize_payload(list(args), "args"), normalize_payload(dict(kwargs), "kwargs")
