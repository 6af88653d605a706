"""A lifespan wrapper for a backend alias that does not exist: startup fails."""

from django.core.asgi import get_asgi_application

from dj_queue.contrib.asgi import DjQueueLifespan

application = DjQueueLifespan(get_asgi_application(), backend="missing")
