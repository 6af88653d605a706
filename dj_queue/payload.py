"""The JSON data contract for task arguments and return values.

Whatever is stored must come back equal: ``enqueue(...)`` and ``get_result(id)``
describe the same call. ``normalize_json`` (what ``TaskResult`` applies) already
turns tuples into lists and bytes into text; this module rejects what JSON would
still change or what some database refuses to store.
"""

import math
from typing import Any

from django.utils.json import normalize_json

from .exceptions import InvalidPayload

_FIX = "Pass only JSON values: str, int, float, bool, None, lists and dicts with str keys."


def _check(value: Any, where: str) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidPayload(
                f"{where}: contains a NUL character (\\x00), which PostgreSQL cannot store "
                "in JSON. Remove it or encode the text (for example as base64)."
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidPayload(f"{where}: {value!r} is not a JSON number. {_FIX}")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidPayload(
                    f"{where}: key {key!r} is a {type(key).__name__}; JSON would turn it "
                    f"into the string {str(key)!r}. {_FIX}"
                )
            _check(key, f"{where}[{key!r}]")
            _check(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]")


def normalize_payload(value: Any, where: str) -> Any:
    """``value`` as stored and returned, or InvalidPayload naming what does not fit."""
    try:
        normalized = normalize_json(value)
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"{where}: {exc}. {_FIX}") from exc
    _check(normalized, where)
    return normalized


def normalize_arguments(args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    normalized_args = normalize_payload(list(args), "args")
    normalized_kwargs = normalize_payload(dict(kwargs), "kwargs")
    return normalized_args, normalized_kwargs
