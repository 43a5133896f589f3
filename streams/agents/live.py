"""Live inbox updates: a server-sent event to a console page when its team's alerts change, at most one a second.

The alerting agent puts the care teams whose alerts a batch changed on each open page's queue
(`Alerting.watchers`), and the page's script fetches its rows again at each `inbox` event. In a storm the agent
changes books many times a second, and each update is a page built again on the worker's loop, which routes the
alerts too: an update each time made three open inboxes slow routing 1,000 alerts from 4 s to 120 s. So a page
is told at most once a `LIVE_EVERY`, and that once covers every change before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from alerts.routing import UNASSIGNED

if TYPE_CHECKING:
    from console.session import Session

    from .alerting import Alerting

__all__ = ["LIVE_EVERY", "stream"]

#: seconds between a page's updates at the least
LIVE_EVERY = 1.0
#: a comment this often keeps the connection open
_KEEPALIVE = 15.0


async def stream(request: Any, *, session: Session, alerting: Alerting,
                 headers: Mapping[str, str]) -> web.StreamResponse:
    """`inbox` when the session's team's alerts (or the unassigned ones) change, until the session ends."""
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue: asyncio.Queue = asyncio.Queue(maxsize=16)  # full: the page is behind, and is told once anyway
    alerting.watchers.add(queue)
    told = 0.0
    try:
        await response.write(b"retry: 3000\n\nevent: ready\ndata: {}\n\n")
        while session.expires > time.time():
            try:
                teams = await asyncio.wait_for(queue.get(), _KEEPALIVE)
            except asyncio.TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if session.team in teams or UNASSIGNED in teams:
                await asyncio.sleep(told + LIVE_EVERY - time.monotonic())
                while not queue.empty():  # what changed meanwhile is in the rows about to be fetched
                    queue.get_nowait()
                await response.write(b"event: inbox\ndata: {}\n\n")
                told = time.monotonic()
    except ConnectionResetError:  # the page went away
        pass
    finally:
        alerting.watchers.discard(queue)
    return response
