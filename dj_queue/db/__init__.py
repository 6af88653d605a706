from .base import Driver
from .drivers import get_driver
from .values import ClaimRequest, Completion, ReadyRow

__all__ = ["ClaimRequest", "Completion", "Driver", "ReadyRow", "get_driver"]
