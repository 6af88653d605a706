"""Where a backend's configuration comes from, and in which order.

From weakest to strongest: ``TASKS[alias]["OPTIONS"]``, a YAML file (named by
``--config`` or ``DJ_QUEUE_CONFIG``) of the same shape, environment variables,
then command-line flags. Mappings merge key by key; any other value replaces
the one below it. Each source is checked on its own first, so an error names
the source it came from (a YAML error also names its line).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import QueueConfig, parse_options
from .exceptions import ConfigurationError

ENV_CONFIG = "DJ_QUEUE_CONFIG"
ENV_MODE = "DJ_QUEUE_MODE"
ENV_SKIP_RECURRING = "DJ_QUEUE_SKIP_RECURRING"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class CommandLine:
    """Overrides given on the ``manage.py dj_queue`` command line."""

    config_path: str | None = None
    mode: str | None = None
    skip_recurring: bool = False


def settings_label(alias: str) -> str:
    return f"TASKS[{alias!r}]['OPTIONS']"


def load_config(
    alias: str,
    options: Mapping[str, Any] | None,
    *,
    environ: Mapping[str, str] | None = None,
    command_line: CommandLine | None = None,
) -> QueueConfig:
    environ = os.environ if environ is None else environ
    command_line = command_line or CommandLine()
    if options is not None and not isinstance(options, Mapping):
        raise ConfigurationError(
            f"{settings_label(alias)}: must be a dict of options, got "
            f"{type(options).__name__} {options!r}."
        )
    options = dict(options or {})
    parse_options(options, settings_label(alias))
    merged = options

    path = command_line.config_path or environ.get(ENV_CONFIG) or None
    if path:
        source = "--config" if command_line.config_path else ENV_CONFIG
        merged = _merge(merged, read_yaml(path, source))

    overrides: dict[str, Any] = {}
    if environ.get(ENV_MODE):
        overrides["mode"] = environ[ENV_MODE]
        parse_options(overrides, f"environment variable {ENV_MODE}")
    if command_line.mode:
        overrides["mode"] = command_line.mode
    return parse_options(_merge(merged, overrides), _label(alias, path))


def skip_recurring(
    *, environ: Mapping[str, str] | None = None, command_line: CommandLine | None = None
) -> bool:
    environ = os.environ if environ is None else environ
    if command_line is not None and command_line.skip_recurring:
        return True
    value = environ.get(ENV_SKIP_RECURRING, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(
        f"environment variable {ENV_SKIP_RECURRING}={environ[ENV_SKIP_RECURRING]!r}: "
        "expected 1/true/yes/on or 0/false/no/off."
    )


def read_yaml(path: str, source: str = "--config") -> dict[str, Any]:
    """The options mapping in the YAML file at ``path``, checked on its own."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"{path} (from {source}): cannot read the configuration file: {exc.strerror}."
        ) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigurationError(f"{where}: not valid YAML: {problem}.") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{path}: expected a mapping of dj_queue options (the shape of "
            f"TASKS[alias]['OPTIONS']), got a {type(data).__name__}."
        )
    lines = _key_lines(node, path)
    try:
        parse_options(data, path)
    except ConfigurationError as exc:
        message = str(exc)
        located = [key for key in lines if message.startswith(f"{key}:")]
        if located:
            key = max(located, key=len)
            raise ConfigurationError(f"{path}, line {lines[key]}: {message}") from None
        raise
    return data


def _key_lines(node: yaml.Node | None, where: str) -> dict[str, int]:
    """Line numbers of every key and list item, by the path the parser names them."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{where}[{key_node.value!r}]"
            lines[path] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = f"{where}[{index}]"
            lines[path] = item.start_mark.line + 1
            lines.update(_key_lines(item, path))
    return lines


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _label(alias: str, path: str | None) -> str:
    label = settings_label(alias)
    return f"{label} merged with {path}" if path else label
