"""Errors the job layer raises for the user to fix (no import of its own: every room may use it)."""

from __future__ import annotations


class ConfigurationError(ValueError):
    """Settings name an exchange, market or replay window that does not exist (the message
    lists the valid ones)."""
