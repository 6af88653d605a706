"""Key templates: ``str.format`` templates over a task call's arguments.

Concurrency keys and unique keys are both declared as templates such as
``"account:{account_id}"``. A template is checked against the task's signature
when the task is declared and rendered from each call's arguments (defaults
included, ``**kwargs`` spread out) when it is enqueued.
"""

from __future__ import annotations

import inspect
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.tasks.exceptions import InvalidTask

Problem = Callable[[str], InvalidTask]


@dataclass(frozen=True, slots=True)
class KeyTemplate:
    task_path: str
    option: str  # the option that declared it, named in errors
    template: str
    signature: inspect.Signature
    takes_context: bool
    max_length: int

    @classmethod
    def checked(
        cls,
        task_path: str,
        option: str,
        template: Any,
        function: Callable[..., Any],
        takes_context: bool,
        max_length: int,
    ) -> KeyTemplate:
        """The template, or InvalidTask naming the task and the option."""

        def invalid(problem: str) -> InvalidTask:
            return InvalidTask(f"Task {task_path}: {option} {problem}")

        if not isinstance(template, str) or not template.strip():
            raise invalid(f"must be a non-empty string, got {template!r}.")
        signature = inspect.signature(function)
        _check(template, signature, takes_context, invalid)
        return cls(task_path, option, template, signature, takes_context, max_length)

    def render(self, args: Any, kwargs: Any) -> str:
        """The call's key; InvalidTask if the call cannot render it."""
        leading = (None,) if self.takes_context else ()
        try:
            bound = self.signature.bind(*leading, *args, **kwargs)
        except TypeError as exc:
            raise InvalidTask(
                f"{self.task_path}: the call does not match the task's signature ({exc}), so "
                f"its {self.option} {self.template!r} cannot be rendered."
            ) from None
        bound.apply_defaults()
        values: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = self.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                values.update(value)
            else:
                values[name] = value
        try:
            key = self.template.format_map(values)
        except (KeyError, AttributeError, IndexError, TypeError, ValueError) as exc:
            raise InvalidTask(
                f"{self.task_path}: {self.option} {self.template!r} cannot be rendered "
                f"from this call's arguments ({type(exc).__name__}: {exc})."
            ) from None
        if len(key) > self.max_length:
            raise InvalidTask(
                f"{self.task_path}: {self.option} {self.template!r} rendered to "
                f"{len(key)} characters; at most {self.max_length} are stored. Use "
                "shorter values in the key (an id rather than a name, for example)."
            )
        return key


def _check(
    template: str, signature: inspect.Signature, takes_context: bool, invalid: Problem
) -> None:
    parameters = list(signature.parameters.values())
    if takes_context:
        parameters = parameters[1:]
    names = {
        p.name
        for p in parameters
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    open_keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template)]
    except ValueError as exc:
        raise invalid(f"{template!r} is not a valid template: {exc}.") from None
    for field in fields:
        if field is None:
            continue
        root = field.split(".", 1)[0].split("[", 1)[0]
        if not root or root.isdigit():
            raise invalid(
                f"{template!r} must name the arguments it uses ('{{account_id}}'), "
                "not refer to them by position."
            )
        if root not in names and not open_keywords:
            known = ", ".join(sorted(names)) or "none"
            raise invalid(
                f"{template!r} names {root!r}, which is not a parameter of the task "
                f"(its parameters: {known})."
            )
