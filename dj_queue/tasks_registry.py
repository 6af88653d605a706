"""Resolving a stored task path to the ``django.tasks.Task`` it names.

Every Task bound to a dj_queue backend passes through ``validate_task`` when its
module is imported, and is remembered here; a worker then finds it without
importing anything. A path not seen yet is imported only when its module lies in
the package of an installed Django app, and whatever it names must be a Task:
a stored row can never make a worker import or call arbitrary code.
"""

import importlib
import sys
import threading
from typing import Any

from django.apps import apps
from django.tasks import Task

from .exceptions import TaskNotResolvable

_known: dict[str, Task] = {}
_lock = threading.Lock()


def remember(task: Task) -> None:
    path = task.module_path
    if path not in _known:
        with _lock:
            _known.setdefault(path, task)


def known_task(task_path: str) -> Task | None:
    """The Task registered under ``task_path`` in this process, without importing."""
    return _known.get(task_path)


def known_tasks() -> list[Task]:
    """Every Task of a dj_queue backend imported so far."""
    with _lock:
        return list(_known.values())


def _in_an_installed_app(module_path: str) -> bool:
    """Whether ``module_path`` is an installed app's package or lies inside one
    (``django.contrib.humanize`` is not inside ``django.contrib.admin``)."""
    return any(
        module_path == config.name or module_path.startswith(config.name + ".")
        for config in apps.get_app_configs()
    )


def _import_module(module_path: str, task_path: str) -> Any:
    # A module already imported is no new code to run; anything else must
    # belong to an installed app.
    if module_path not in sys.modules and not _in_an_installed_app(module_path):
        raise TaskNotResolvable(
            f"Task path {task_path!r} is outside every installed app's package; dj_queue "
            "only imports task modules of apps in INSTALLED_APPS. Move the task into an "
            "installed app or import its module at startup."
        )
    try:
        # Even for a module in sys.modules: import_module waits while another
        # thread is still executing it, where sys.modules would hand out a
        # half-initialised module.
        return importlib.import_module(module_path)
    except Exception as exc:  # the module itself may fail in any way while importing
        raise TaskNotResolvable(
            f"Task path {task_path!r}: cannot import {module_path!r}: {exc}"
        ) from exc


def resolve_task(task_path: str) -> Task:
    """The Task stored as ``task_path``, or TaskNotResolvable."""
    task = _known.get(task_path)
    if task is not None:
        return task
    module_path, _, attribute = task_path.rpartition(".")
    if not module_path or not attribute:
        raise TaskNotResolvable(f"Task path {task_path!r} is not a dotted path.")
    module = _import_module(module_path, task_path)
    # Importing the module may have registered it through validate_task.
    found = _known.get(task_path, getattr(module, attribute, None))
    if not isinstance(found, Task):
        raise TaskNotResolvable(
            f"Task path {task_path!r} does not name a django.tasks.Task "
            f"(found {type(found).__name__})."
        )
    return found
