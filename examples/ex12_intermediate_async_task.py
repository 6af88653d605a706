"""ex12 — ``async def`` tasks, and enqueueing from async code.

A task may be a coroutine function: the worker runs it to completion in its own
event loop, so ``asyncio.gather`` inside overlaps its waits. Sync and async
tasks share the queue. From async code (an async view, say), ``await
task.aenqueue(...)`` and ``await task.aget_result(id)`` do what the sync forms do.

    python examples/ex12_intermediate_async_task.py
"""

import _support as example

example.configure()

import asyncio  # noqa: E402
import time  # noqa: E402

from django.tasks import task  # noqa: E402


@task
async def fetch_pages(names, delay):
    async def fetch(name):
        await asyncio.sleep(delay)  # a network call, say
        return f"<{name}>"

    started = time.monotonic()
    pages = await asyncio.gather(*(fetch(name) for name in names))
    return {"pages": pages, "seconds": round(time.monotonic() - started, 2)}


@task
def word_count(text):
    return len(text.split())


async def enqueue_and_wait():
    pages = await fetch_pages.aenqueue(["home", "about", "blog"], delay=0.4)
    words = await word_count.aenqueue("async and sync tasks share one queue")
    example.say(f"await aenqueue(...): fetch_pages {pages.id}, word_count {words.id}")

    deadline = time.monotonic() + 15
    while not (pages.is_finished and words.is_finished):
        example.check(time.monotonic() < deadline, "the jobs did not finish within 15 s")
        await asyncio.sleep(0.05)
        pages = await fetch_pages.aget_result(pages.id)
        words = await word_count.aget_result(words.id)
    return pages, words


def main():
    with example.runtime():
        pages, words = asyncio.run(enqueue_and_wait())

    example.check(words.status.value == "SUCCESSFUL", "the sync task should succeed")
    example.say(f"word_count(...) -> {words.return_value} ({words.status.value})")
    example.check(pages.status.value == "SUCCESSFUL", "the async task should succeed")
    value = pages.return_value
    example.check(value["pages"] == ["<home>", "<about>", "<blog>"], f"pages: {value}")
    # Three 0.4 s waits run side by side: far less than the 1.2 s they would take in turn.
    example.check(value["seconds"] < 1.0, f"the waits should overlap, took {value['seconds']}s")
    example.say(
        f"async fetch_pages(3 pages) -> {value['pages']} in {value['seconds']}s "
        f"({pages.status.value})"
    )


if __name__ == "__main__":
    example.run(main)
