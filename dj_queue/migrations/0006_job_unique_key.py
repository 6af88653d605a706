from django.db import migrations, models


def exact_on_mysql(apps, schema_editor):
    # MySQL's default collations ignore case and trailing spaces, under which
    # the keys "Report:A" and "report:a " would be one: compare the bytes, with
    # a collation that does not pad (utf8mb4_bin itself does).
    connection = schema_editor.connection
    if connection.vendor != "mysql":
        return
    collation = "utf8mb4_nopad_bin" if connection.mysql_is_mariadb else "utf8mb4_0900_bin"
    table = schema_editor.quote_name("dj_queue_job")
    column = schema_editor.quote_name("unique_key")
    schema_editor.execute(
        f"ALTER TABLE {table} MODIFY {column} varchar(255) "
        f"CHARACTER SET utf8mb4 COLLATE {collation} NULL"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dj_queue", "0005_claim_cancel_request"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="unique_key",
            field=models.CharField(blank=True, max_length=255, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="job",
            name="unique_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(exact_on_mysql, migrations.RunPython.noop, atomic=False),
    ]
