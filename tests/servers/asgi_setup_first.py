"""Django set up before dj_queue is imported, and an inner app that speaks lifespan."""

import django

django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402

from dj_queue.contrib.asgi import DjQueueLifespan  # noqa: E402

django_application = get_asgi_application()
EVENTS: list[str] = []


async def with_lifespan(scope, receive, send):
    """Handles lifespan itself (and records it in the log), serves HTTP through Django."""
    if scope["type"] != "lifespan":
        await django_application(scope, receive, send)
        return
    while True:
        message = await receive()
        print(f"inner app got {message['type']}", flush=True)
        await send({"type": f"{message['type']}.complete"})
        if message["type"] == "lifespan.shutdown":
            return


application = DjQueueLifespan(with_lifespan)
