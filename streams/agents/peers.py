"""Peers: asking the group's other workers what this one cannot answer (alerts on partitions they hold).

The ack API and the console pass a request on to the other workers of the
consumer group, with the caller's own credentials and a header that says it
was passed on (so that it is passed on once only). A worker that does not
answer in time is left out: its partitions move once the group notices it
is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container, Mapping
from typing import Any

import aiohttp

__all__ = ["FORWARDED", "ask", "addresses"]

log = logging.getLogger(__name__)

#: set on a request one worker passes to another, so that it is passed on once only
FORWARDED = "carewatch-forwarded"


def addresses(app: Any) -> list[str]:
    """The web addresses of the group's other workers, as faust's assignor knows them."""
    own = str(app.conf.canonical_url).rstrip("/")
    return sorted({url.rstrip("/") for url in app.assignor.changelog_distribution} - {own})


async def ask(peers: list[str], method: str, path: str, *, headers: Mapping[str, str], accept: Container[int],
              data: bytes | str | None = None, wait: float, first: bool = True) -> list[tuple[int, bytes]]:
    """Each peer's answer (status, body) whose status is in `accept`; only the first if `first`."""
    answers: list[tuple[int, bytes]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=wait)) as client:
        for peer in peers:
            try:
                async with client.request(method, f"{peer}{path}", data=data, headers={**headers, FORWARDED: "1"},
                                          allow_redirects=False) as response:
                    if response.status not in accept:
                        continue
                    answers.append((response.status, await response.read()))
                    if first:
                        break
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.warning("asking a peer worker failed: %s", type(exc).__name__)
    return answers
