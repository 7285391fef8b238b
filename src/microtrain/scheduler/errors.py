"""The one error type the scheduler raises for bad user input."""
from __future__ import annotations

from ..errors import MicrotrainError


class SchedulerError(MicrotrainError, ValueError):
    """Bad layer, hardware description, option or model given to the scheduler.

    Subclasses MicrotrainError so the CLI prints it as one line, and ValueError
    so plain-Python callers can catch it the usual way."""
