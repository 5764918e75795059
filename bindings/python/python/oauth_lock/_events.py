"""Routes the core's decision events (DESIGN.md §8: ``refreshed``, ``adopted``,
``lock_waited``, ...) to the ``logging`` logger ``oauth_lock``. Events carry token
fingerprints only, never a token.

Whether the logger takes INFO records is read at the start of each call that may wait or
refresh (``_info_enabled``); INFO events of a call are dropped natively, without entering
Python, when it did not then. So a level changed while a call runs applies from the next
call."""

from __future__ import annotations

import json
import logging

__all__ = ["logger"]

#: The logger every event goes to: INFO for decisions, WARNING for ones a user may act on.
logger = logging.getLogger("oauth_lock")

_LEVELS = {"info": logging.INFO, "warn": logging.WARNING}


def _info_enabled() -> bool:
    """Called by the native side (with the GIL) before a call that may decide events."""
    return logger.isEnabledFor(logging.INFO)


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
