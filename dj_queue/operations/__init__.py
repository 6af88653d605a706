"""Every transition of the queue tables, each one transaction.

Nothing else in dj_queue writes the queue tables: the backend, the runtime, the
admin and the management commands all call in here.
"""
