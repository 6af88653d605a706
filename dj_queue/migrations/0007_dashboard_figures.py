"""The figures behind the dashboard and the metrics: a tally of finished jobs
per minute, the queue on failed executions (copied from their jobs), and the
indexes that keep every per-queue figure a bounded index read."""

from typing import Any

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_failed_queue_names(apps: Any, schema_editor: Any) -> None:
    failed = apps.get_model("dj_queue", "FailedExecution")
    job = apps.get_model("dj_queue", "Job")
    alias = schema_editor.connection.alias
    queue = job.objects.using(alias).filter(pk=OuterRef("job_id")).values("queue_name")[:1]
    failed.objects.using(alias).update(queue_name=Subquery(queue))


class Migration(migrations.Migration):
    dependencies = [
        ("dj_queue", "0006_job_unique_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="FinishedTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("backend_alias", models.CharField(max_length=64)),
                ("queue_name", models.CharField(max_length=128)),
                (
                    "status",
                    models.CharField(
                        choices=[("succeeded", "Succeeded"), ("failed", "Failed")], max_length=16
                    ),
                ),
                ("minute", models.DateTimeField(blank=True, null=True)),
                ("count", models.BigIntegerField()),
            ],
            options={
                "db_table": "dj_queue_finished_tally",
            },
        ),
        migrations.AddField(
            model_name="failedexecution",
            name="queue_name",
            field=models.CharField(default="", max_length=128),
        ),
        migrations.RunPython(copy_failed_queue_names, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="blockedexecution",
            index=models.Index(fields=["queue_name"], name="dj_queue_blocked_queue"),
        ),
        migrations.AddIndex(
            model_name="failedexecution",
            index=models.Index(fields=["queue_name"], name="dj_queue_failed_queue"),
        ),
        migrations.AddIndex(
            model_name="readyexecution",
            index=models.Index(
                fields=["queue_name", "created_at"], name="dj_queue_ready_queue_age"
            ),
        ),
        migrations.AddIndex(
            model_name="scheduledexecution",
            index=models.Index(fields=["queue_name"], name="dj_queue_scheduled_queue"),
        ),
        migrations.AddIndex(
            model_name="finishedtally",
            index=models.Index(
                fields=["backend_alias", "minute", "status", "count"],
                name="dj_queue_tally_minute",
            ),
        ),
    ]
