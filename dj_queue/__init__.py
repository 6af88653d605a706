"""Database-backed task queue backend for Django's ``django.tasks`` framework."""

__version__ = "0.1.0"
