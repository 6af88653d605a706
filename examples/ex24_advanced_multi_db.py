"""ex24 — a dedicated queue database: dj_queue's tables on their own DATABASES alias.

``database_alias: "queue"`` puts the queue on the "queue" database and
``DjQueueRouter`` routes dj_queue's models (and its migrations) there. Your app
migrates "default" as usual, dj_queue migrates "queue"; jobs are written to and
run from "queue", and enqueue_on_commit follows your transaction on "default".

    python examples/ex24_advanced_multi_db.py
"""

import _support as example

# Two aliases (two SQLite files, or two scratch databases on a server); the
# admin's apps give the "default" database a model of the app's own: User.
example.configure(
    databases=("default", "queue"),
    options={"database_alias": "queue"},
    admin=True,
    migrate=False,
)

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.tasks import task  # noqa: E402

from dj_queue.api import enqueue_on_commit  # noqa: E402
from dj_queue.models import Job  # noqa: E402


@task
def welcome(user_id):
    # Runs in the runtime: the app's data is read from "default" as usual.
    return f"welcome, {User.objects.get(pk=user_id).username}"


def main():
    # Two steps: `manage.py migrate` (the app, on "default": the router keeps
    # dj_queue off it), then `manage.py migrate dj_queue --database queue`.
    call_command("migrate", verbosity=0)
    call_command("migrate", "dj_queue", database="queue", verbosity=0)
    for alias in ("default", "queue"):
        tables = connections[alias].introspection.table_names()
        ours = [table for table in tables if table.startswith("dj_queue_")]
        example.say(f"'{alias}': {len(ours)} dj_queue tables, auth_user: {'auth_user' in tables}")
        example.check(bool(ours) == (alias == "queue"), "dj_queue tables only on 'queue'")
        example.check(("auth_user" in tables) == (alias == "default"), "app tables on 'default'")

    with transaction.atomic():  # the app's transaction, on "default"
        user = User.objects.create(username="ada")
        enqueue_on_commit(welcome, user.id)
        # DjQueueRouter sends queries on dj_queue's models to "queue".
        example.check(not Job.objects.exists(), "nothing enqueued before COMMIT")
    job = Job.objects.get()
    example.say(f"after COMMIT on 'default': {job.task_path} enqueued on 'queue'")

    with example.runtime() as node:
        done = example.wait(welcome.get_backend().get_result(str(job.id)))
    banner = next(line for line in node.log().splitlines() if " on database " in line)
    example.say(f"the runtime's banner: {banner}")
    example.check("on database 'queue'" in banner, "the runtime should serve the 'queue' alias")

    example.check(done.return_value == "welcome, ada", f"got {done.return_value!r}")
    example.say(f"welcome({user.id}) -> {done.return_value!r}, run from the 'queue' database")


if __name__ == "__main__":
    example.run(main)
