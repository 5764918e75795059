"""Routes the core's decision events (DESIGN.md §8: ``refreshed``, ``adopted``,
``lock_waited``, ...) to the ``logging`` logger ``oauth_lock``. Events carry token
fingerprints only, never a token."""

from __future__ import annotations

import json
import logging

__all__ = ["logger"]

#: The logger every event goes to: INFO for decisions, WARNING for ones a user may act on.
logger = logging.getLogger("oauth_lock")

_LEVELS = {"info": logging.INFO, "warn": logging.WARNING}


def _on_event(event_json: str) -> None:
    """Called by the native side, on whatever thread decided the event."""
    e = json.loads(event_json)
    level = _LEVELS.get(e["level"], logging.INFO)
    if not logger.isEnabledFor(level):
        return
    fields = " ".join(f"{k}={v}" for k, v in e["fields"].items())
    logger.log(
        level,
        "%s %s: %s%s",
        e["event"],
        e["key"],
        e["message"],
        f" ({fields})" if fields else "",
        extra={
            "oauth_lock_event": e["event"],
            "oauth_lock_key": e["key"],
            "oauth_lock_path": e["path"],
            "oauth_lock_fields": e["fields"],
        },
    )
