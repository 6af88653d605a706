"""Django's ASGI application alone: what bench/embedded.py compares the wrapper with."""

from django.core.asgi import get_asgi_application

application = get_asgi_application()
