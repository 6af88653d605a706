from .executions import (
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    ReadyExecution,
    ScheduledExecution,
)
from .job import Job
from .pause import Pause
from .process import Process
from .recurring import RecurringExecution, RecurringTask
from .semaphore import Semaphore
from .tally import FinishedTally

__all__ = [
    "BlockedExecution",
    "ClaimedExecution",
    "FailedExecution",
    "FinishedTally",
    "Job",
    "Pause",
    "Process",
    "ReadyExecution",
    "RecurringExecution",
    "RecurringTask",
    "ScheduledExecution",
    "Semaphore",
]
