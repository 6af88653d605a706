"""The chaos scenarios, small: every invariant of the guarantees under faults.

bench/chaos.py runs the same scenarios at full size and prints their tables."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.chaos.report import table
from tests.chaos.scenarios import SCENARIOS, Scale, Stage, not_applicable

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

SCALE = Scale()


@pytest.fixture
def stage(runtime_env, tmp_path) -> Stage:
    return Stage(env=runtime_env, database=connection.vendor, workdir=tmp_path)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_keeps_every_guarantee(name, stage):
    reason = not_applicable(name)
    if reason:
        pytest.skip(reason)
    report = SCENARIOS[name](stage, SCALE)
    print(table([report]))
    assert report.problems == [], table([report])
