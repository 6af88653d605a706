"""silence_polling keeps polling queries out of Django's SQL log."""

import logging

import pytest
from django.db import connection

from dj_queue.models import ReadyExecution
from dj_queue.runtime.silence import polling

pytestmark = pytest.mark.django_db


@pytest.fixture
def sql_log(caplog):
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True
    try:
        yield caplog
    finally:
        connection.force_debug_cursor = False


def logged_queries(caplog) -> int:
    return sum(record.name == "django.db.backends" for record in caplog.records)


def test_polling_queries_are_left_out_when_silenced(sql_log):
    with polling(True):
        ReadyExecution.objects.count()
    assert logged_queries(sql_log) == 0

    ReadyExecution.objects.count()
    assert logged_queries(sql_log) == 1


def test_polling_queries_are_logged_when_not_silenced(sql_log):
    with polling(False):
        ReadyExecution.objects.count()
    assert logged_queries(sql_log) == 1
