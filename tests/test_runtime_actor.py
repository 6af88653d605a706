"""Actors and supervisors in-process: heartbeats, errors, replacement policy."""

from __future__ import annotations

import time

import pytest

from dj_queue.config import QueueConfig
from dj_queue.models import Process
from dj_queue.runtime import errors as runtime_errors
from dj_queue.runtime.dispatcher import Dispatcher
from dj_queue.runtime.supervisor import AsyncSupervisor, Ending, Slot, Topology

CONFIG = QueueConfig(process_heartbeat_interval=1, process_alive_threshold=3)

pytestmark = pytest.mark.django_db


def registered_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher(
        backend_alias="default", config=CONFIG, dispatcher=CONFIG.dispatchers[0]
    )
    assert dispatcher._register()
    dispatcher._last_beat = 0.0
    return dispatcher


def test_beat_refreshes_the_heartbeat():
    dispatcher = registered_dispatcher()
    Process.objects.filter(pk=dispatcher.process_id).update(last_heartbeat_at="2000-01-01T00:00Z")

    dispatcher.beat()

    assert Process.objects.get(pk=dispatcher.process_id).last_heartbeat_at.year > 2000
    assert not dispatcher.stopping


def test_actor_whose_row_was_pruned_stops():
    dispatcher = registered_dispatcher()
    Process.objects.filter(pk=dispatcher.process_id).delete()

    dispatcher.beat()

    assert dispatcher.stopping


def test_actor_that_cannot_heartbeat_past_the_threshold_stops(monkeypatch):
    dispatcher = registered_dispatcher()

    def unreachable(alias, process_id):
        from django.db import OperationalError

        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("dj_queue.runtime.actor.heartbeat", unreachable)
    dispatcher._last_beat = time.monotonic() - 1  # within the threshold
    dispatcher.beat()
    assert not dispatcher.stopping

    dispatcher._last_beat -= CONFIG.process_alive_threshold
    dispatcher.beat()
    assert dispatcher.stopping


seen: list[BaseException] = []


def record_error(exc: BaseException) -> None:
    seen.append(exc)


def test_on_thread_error_receives_runtime_errors(caplog):
    seen.clear()
    error = RuntimeError("boom in a runtime thread")

    runtime_errors.report_thread_error(error, f"{__name__}.record_error", "worker w-1")

    assert seen == [error]
    assert "boom in a runtime thread" in caplog.text


def test_failing_on_thread_error_handler_is_logged_not_raised(caplog):
    runtime_errors.report_thread_error(RuntimeError("x"), f"{__name__}.no_such_handler", "w")
    assert "on_thread_error handler" in caplog.text


def test_replacements_back_off_while_an_actor_keeps_dying():
    supervisor = AsyncSupervisor(backend_alias="default", config=CONFIG, topology=Topology())
    supervisor.process_id = 0
    slot = Slot(
        "dispatcher[0]",
        lambda sid: Dispatcher(
            backend_alias="default", config=CONFIG, dispatcher=CONFIG.dispatchers[0]
        ),
    )
    delays = []
    for _ in range(5):
        slot.actor = slot.make(0)
        slot.started_at = time.monotonic()
        supervisor._handle_ending(Ending(slot, "exited with status 1", False))
        delays.append(round(slot.start_at - time.monotonic()))
    assert delays == [0, 1, 2, 4, 8]


def test_actor_that_ran_long_enough_is_replaced_at_once():
    supervisor = AsyncSupervisor(backend_alias="default", config=CONFIG, topology=Topology())
    supervisor.process_id = 0
    slot = Slot(
        "dispatcher[0]",
        lambda sid: Dispatcher(
            backend_alias="default", config=CONFIG, dispatcher=CONFIG.dispatchers[0]
        ),
    )
    slot.failures = 6
    slot.actor = slot.make(0)
    slot.started_at = time.monotonic() - 3600
    supervisor._handle_ending(Ending(slot, "exited with status 1", False))
    assert slot.failures == 1
    assert slot.start_at <= time.monotonic()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, Topology(workers=True, dispatchers=True, scheduler=True)),
        ({"only_work": True}, Topology(workers=True, dispatchers=False, scheduler=False)),
        ({"only_dispatch": True}, Topology(workers=False, dispatchers=True, scheduler=False)),
        ({"skip_recurring": True}, Topology(workers=True, dispatchers=True, scheduler=False)),
    ],
)
def test_topology_flags(flags, expected):
    assert Topology.from_flags(**flags) == expected


def test_only_work_and_only_dispatch_together_are_refused():
    with pytest.raises(ValueError, match="cannot be combined"):
        Topology.from_flags(only_work=True, only_dispatch=True)
