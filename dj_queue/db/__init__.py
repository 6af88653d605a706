from .base import Driver, ReadyRow, get_driver

__all__ = ["Driver", "ReadyRow", "get_driver"]
