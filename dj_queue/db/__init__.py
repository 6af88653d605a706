from .base import Driver
from .drivers import get_driver
from .values import ClaimRequest, Completion, CompletionBatch, ReadyRow

__all__ = ["ClaimRequest", "Completion", "CompletionBatch", "Driver", "ReadyRow", "get_driver"]
