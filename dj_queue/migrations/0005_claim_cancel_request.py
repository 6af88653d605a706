from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dj_queue", "0004_job_retry_policy"),
    ]

    operations = [
        migrations.AddField(
            model_name="claimedexecution",
            name="cancel_requested_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
