from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dj_queue", "0003_recurring_last_run"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="retry_policy",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="timeout",
            field=models.FloatField(blank=True, null=True),
        ),
    ]
