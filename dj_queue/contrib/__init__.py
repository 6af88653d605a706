"""Integrations with host servers: ``asgi`` (a lifespan wrapper) and
``gunicorn`` (server hooks). Importing them loads nothing of Django's."""
