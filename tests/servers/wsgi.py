"""The WSGI application gunicorn serves in the tests."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
