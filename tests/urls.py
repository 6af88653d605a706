import os

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path


def ping(request: HttpRequest) -> JsonResponse:
    """What the embedded-server tests request: which process served it."""
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("ping/", ping),
    path("dj_queue/", include("dj_queue.urls")),
]
