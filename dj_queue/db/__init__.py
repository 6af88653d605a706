from .base import ClaimRequest, Completion, Driver, ReadyRow, get_driver

__all__ = ["ClaimRequest", "Completion", "Driver", "ReadyRow", "get_driver"]
