"""The README's asgi.py, verbatim: dj_queue.contrib.asgi imported before Django is set up."""

from django.core.asgi import get_asgi_application

from dj_queue.contrib.asgi import DjQueueLifespan

django_application = get_asgi_application()
application = DjQueueLifespan(django_application)
