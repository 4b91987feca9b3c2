"""Errors of the lake floor.

Every message is one line that says what went wrong and what to do about it, so the CLI and the
web UI can show it as is.
"""

from __future__ import annotations


class LakeError(Exception):
    """A lake table cannot be written or read as asked (bad name, bad data, broken pointer)."""


class EngineUnavailable(LakeError):
    """The analytics engine asked for cannot be started here (missing package, Java or master)."""
