"""Errors the job layer raises for the user to fix (no import of its own: every room may use it)."""

from __future__ import annotations


class ConfigurationError(ValueError):
    """Settings name an exchange, market or replay window that does not exist (the message
    lists the valid ones)."""


class RecordingError(ConfigurationError):
    """A recorded data file is damaged (a truncated or malformed row, a timestamp repeated or
    out of order): the message names the file and the line, in one line."""
