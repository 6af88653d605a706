"""dj_queue's figures over HTTP: ``path("dj_queue/", include("dj_queue.urls"))``
serves ``dj_queue/metrics`` (Prometheus) and ``dj_queue/stats.json``.

Importing this module never needs prometheus_client: only the ``metrics``
view does, and without it answers 501 naming the package to install.
"""

from django.urls import path

from . import views

app_name = "dj_queue"

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("stats.json", views.stats, name="stats"),
]
