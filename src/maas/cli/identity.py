"""Who the audit log records for changes made from this terminal."""

from __future__ import annotations

import getpass

__all__ = ["actor"]


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"
