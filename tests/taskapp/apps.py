import os

from django.apps import AppConfig


def _ledger_receiver(event):
    def receive(sender, task_result, **kwargs):
        line = f"{event}:{task_result.id}"
        if event == "finished":
            line += f":{task_result.status.value}"
        with open(os.environ["DJ_QUEUE_TEST_SIGNAL_LEDGER"], "a") as out:
            out.write(line + "\n")

    return receive


class TaskAppConfig(AppConfig):
    name = "tests.taskapp"
    label = "taskapp"

    def ready(self):
        # A runtime started with DJ_QUEUE_TEST_SIGNAL_LEDGER appends every
        # task_started and task_finished it sends to that file.
        if os.environ.get("DJ_QUEUE_TEST_SIGNAL_LEDGER"):
            from django.tasks.signals import task_finished, task_started

            self.started = _ledger_receiver("started")
            self.finished = _ledger_receiver("finished")
            task_started.connect(self.started)
            task_finished.connect(self.finished)
