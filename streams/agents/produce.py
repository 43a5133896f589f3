"""Sending records and waiting until the broker has each: retried, never given up (the partition waits)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

__all__ = ["send_all"]

log = logging.getLogger(__name__)

_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)


async def send_all(messages: list[dict[str, Any]]) -> None:
    """Send every message (topic, key, value, headers) and wait for the broker's acks; retry what fails."""
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
