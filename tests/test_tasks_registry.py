import sys
import threading

import pytest
from django.tasks import Task

from dj_queue import tasks_registry
from dj_queue.exceptions import TaskNotResolvable
from tests.taskapp.tasks import add

SLOW_MODULE = "tests.taskapp.slow_import_tasks"


def test_registered_task_resolves_to_itself():
    assert tasks_registry.resolve_task(add.module_path) is add


def test_threads_resolving_a_module_still_being_imported_all_get_the_task():
    sys.modules.pop(SLOW_MODULE, None)
    tasks_registry._known.pop(f"{SLOW_MODULE}.defined_late", None)
    found: list[object] = []

    def resolve():
        try:
            found.append(tasks_registry.resolve_task(f"{SLOW_MODULE}.defined_late"))
        except Exception as exc:  # collected, asserted below
            found.append(exc)

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(item, Task) for item in found), found


@pytest.mark.parametrize(
    "path",
    [
        "tests.taskapp.tasks.not_a_task",
        "tests.taskapp.tasks.missing",
        "tests.taskapp.nonexistent_module.thing",
        "json.dumps",
        "antigravity.fly",
        "nodots",
    ],
)
def test_paths_that_are_not_tasks_are_refused(path):
    with pytest.raises(TaskNotResolvable):
        tasks_registry.resolve_task(path)


def test_module_outside_installed_apps_is_not_imported():
    sys.modules.pop("antigravity", None)
    with pytest.raises(TaskNotResolvable, match="INSTALLED_APPS"):
        tasks_registry.resolve_task("antigravity.fly")
    assert "antigravity" not in sys.modules
