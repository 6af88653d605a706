"""``DjQueueLifespan``: run the queue inside an ASGI server's process.

Wrap the application; the server's lifespan events start and stop an embedded
supervisor (``dj_queue.runtime.embedded``)::

    django_application = get_asgi_application()
    application = DjQueueLifespan(django_application)

Every scope but ``lifespan`` goes straight to the wrapped application. The
wrapped application still receives the lifespan events if it handles them;
one that does not (Django's own handler refuses the scope) is left out of them.

Importing this module touches neither settings nor models, so it may come
before ``get_asgi_application()``; Django is set up (if it is not yet) when the
server starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class DjQueueLifespan:
    def __init__(
        self,
        app: ASGIApp,
        *,
        backend: str = "default",
        only_work: bool = False,
        only_dispatch: bool = False,
        skip_recurring: bool = False,
    ) -> None:
        self.app = app
        self.backend = backend
        self._flags = {
            "only_work": only_work,
            "only_dispatch": only_dispatch,
            "skip_recurring_tasks": skip_recurring,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await self._lifespan(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner = _InnerLifespan(self.app, scope)
        started = False
        try:
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        await asyncio.to_thread(self._start)
                        started = True
                    except Exception as exc:
                        await send(_failed("startup", f"dj_queue could not start: {exc}"))
                        return
                    ok, reason = await inner.event("startup")
                    if not ok:
                        await asyncio.to_thread(self._stop)
                        started = False
                        await send(_failed("startup", reason))
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    # Last started, first stopped: the application, then the queue.
                    ok, reason = await inner.event("shutdown")
                    await asyncio.to_thread(self._stop)
                    started = False
                    if ok:
                        await send({"type": "lifespan.shutdown.complete"})
                    else:
                        await send(_failed("shutdown", reason))
                    return
        finally:
            if started:
                await asyncio.to_thread(self._stop)
            inner.cancel()

    def _start(self) -> None:
        import django
        from django.apps import apps

        if not apps.ready:
            django.setup()
        from ..runtime.embedded import start_embedded

        start_embedded(self.backend, **self._flags)

    def _stop(self) -> None:
        from ..runtime.embedded import stop_embedded

        stop_embedded(self.backend)


def _failed(event: str, reason: str) -> Message:
    return {"type": f"lifespan.{event}.failed", "message": reason}


class _InnerLifespan:
    """The wrapped application's side of the lifespan scope, driven by us."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | None] = asyncio.Queue()
        self.supported = True
        self._task = asyncio.ensure_future(self._run(app, dict(scope)))

    async def _run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self._to_app.get, self._from_app.put)
        except Exception:
            # An application that does not do lifespan raises on the scope:
            # it simply takes no part in it.
            pass
        finally:
            await self._from_app.put(None)

    async def event(self, name: str) -> tuple[bool, str]:
        """Pass ``lifespan.<name>`` on; whether the application completed it
        (an application that does not do lifespan counts as complete)."""
        if not self.supported:
            return True, ""
        await self._to_app.put({"type": f"lifespan.{name}"})
        reply = await self._from_app.get()
        if reply is None:
            self.supported = False
            return True, ""
        if reply["type"] == f"lifespan.{name}.complete":
            return True, ""
        return False, str(reply.get("message", "") or f"the application's {name} failed")

    def cancel(self) -> None:
        if not self._task.done():
            self._task.cancel()
