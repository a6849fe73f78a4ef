"""The failure policy in one class.

:class:`DataError` means "the data (a file, a row, a field, an argument) is wrong": running the
same task again in five minutes would fail the same way, so the Airflow task wrapper fails at
once, without retries, with the message (which names the file, row and field). Every other
exception (network, database, disk) is treated as transient and keeps the task's retries.

Subclasses keep their historical base (``ValueError``, ``RuntimeError``...) so callers that
catch those still work.
"""

from __future__ import annotations


class DataError(Exception):
    """Bad input or bad data: not retried. The message names the file / row / field."""
