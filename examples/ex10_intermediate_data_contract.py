"""ex10 — the data contract: arguments and return values are JSON, unchanged.

``enqueue()`` refuses any argument JSON (or one of the databases) would change,
raising ``InvalidPayload`` that names where the value sits — and writes nothing.
Tuples become lists. A task whose return value JSON cannot hold ends FAILED.

    python examples/ex10_intermediate_data_contract.py
"""

import _support as example

example.configure()

import datetime  # noqa: E402
import decimal  # noqa: E402
import re  # noqa: E402

from django.tasks import task  # noqa: E402

from dj_queue.exceptions import InvalidPayload  # noqa: E402
from dj_queue.models import Job  # noqa: E402


@task
def echo(*args, **kwargs):
    return {"args": args, "kwargs": kwargs}


@task
def tag_set(*tags):
    return set(tags)  # a set is not JSON: the job fails instead of storing it


def nested(depth):
    value = "bottom"
    for _ in range(depth):
        value = [value]
    return value


BAD_CALLS = [
    ((1, {"a", "b"}), {}),
    ((), {"when": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)}),
    ((), {"order": {"total": decimal.Decimal("9.99")}}),
    ((float("nan"),), {}),
    ((), {"population": 1e20}),
    ((), {"user": {"scores": {1: "first"}}}),
    ((nested(32),), {}),
    (("text with a NUL \x00",), {}),
]


def short(message):
    """The error without its advice, a 32-deep path abbreviated."""
    return re.sub(r"(\[0\]){3,}", "[0]...[0]", message.split(" Pass only")[0])


def main():
    before = Job.objects.count()
    for args, kwargs in BAD_CALLS:
        try:
            echo.enqueue(*args, **kwargs)
            example.check(False, f"echo({args}, {kwargs}) should have been refused")
        except InvalidPayload as exc:
            example.say(f"refused: {short(str(exc))}")
    example.check(Job.objects.count() == before, "a refused enqueue must write no row")
    example.say(f"jobs in the table after {len(BAD_CALLS)} refused calls: {Job.objects.count()}")

    good = echo.enqueue((1, 2), point=(3.5, "x"))
    example.say(f"echo((1, 2), point=(3.5, 'x')) stored as args={good.args} kwargs={good.kwargs}")
    example.check(good.args == [[1, 2]], "tuples become lists")
    bad_return = tag_set.enqueue("red", "blue")

    with example.runtime():
        good, bad_return = example.wait_all([good, bad_return])

    example.check(bad_return.status.value == "FAILED", "a set return value should fail the job")
    error = bad_return.errors[0]
    example.say(f"tag_set(...) -> {bad_return.status.value}: {error.exception_class_path}")
    example.say(f"  {short(error.traceback.strip().splitlines()[-1])}")
    example.check(error.exception_class_path == "dj_queue.exceptions.InvalidPayload", "its error")

    example.check(good.status.value == "SUCCESSFUL", "the valid job should succeed")
    expected = {"args": [[1, 2]], "kwargs": {"point": [3.5, "x"]}}
    example.check(good.return_value == expected, f"echo returned {good.return_value}")
    example.say(f"echo((1, 2), point=(3.5, 'x')) -> {good.return_value}")


if __name__ == "__main__":
    example.run(main)
