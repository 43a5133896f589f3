"""Sending records and waiting until the broker has each: retried, never given up (the partition waits)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

__all__ = ["oldest_wait", "send_all"]

log = logging.getLogger(__name__)

_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)
#: when each send_all now waiting began (monotonic): a send that never ends wedges its agent
_WAITING: dict[int, float] = {}
_tokens = itertools.count()


def oldest_wait(now: float) -> float:
    """Seconds the longest-waiting send_all has waited so far (0 when none waits)."""
    return max((now - started for started in _WAITING.values()), default=0.0)


async def send_all(messages: list[dict[str, Any]]) -> None:
    """Send every message (topic, key, value, headers) and wait for the broker's acks; retry what fails."""
    token = next(_tokens)
    _WAITING[token] = time.monotonic()
    try:
        await _send_all(messages)
    finally:
        del _WAITING[token]


async def _send_all(messages: list[dict[str, Any]]) -> None:
    for attempt in itertools.count():
        futures = []
        failed = []
        for message in messages:
            try:
                futures.append((message, await message["topic"].send(
                    key=message["key"], value=message["value"], headers=message.get("headers"), force=True)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified by type name only: no record content in logs
                failed.append((message, exc))
        for message, future in futures:
            try:
                await future
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failed.append((message, exc))
        if not failed:
            return
        delay = _BACKOFF[min(attempt, len(_BACKOFF) - 1)]
        log.warning("%d of %d sends failed (%s); retrying in %.1f s", len(failed), len(messages),
                    type(failed[0][1]).__name__, delay)
        await asyncio.sleep(delay)
        messages = [message for message, _ in failed]
