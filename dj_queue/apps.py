from django.apps import AppConfig


class DjQueueConfig(AppConfig):
    name = "dj_queue"
    verbose_name = "dj_queue"
    default_auto_field = "django.db.models.BigAutoField"
