"""Real servers on loopback for the channels: an HTTP receiver that records and answers as scripted."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from alerts.channels import Notice


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An aiohttp server: each request is recorded, then answered with the next scripted reply (default 200)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    replies: deque = field(default_factory=deque)
    default: tuple[int, dict, bytes] = (200, {}, b"ok")
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, *replies: tuple[int, dict, bytes]) -> None:
        self.replies.extend(replies)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(request.path, dict(request.headers), await request.read()))
        self.arrived.set()
        status, headers, body = self.replies.popleft() if self.replies else self.default
        if status == 0:  # hang: the client's timeout is what ends it
            await asyncio.sleep(3)
        return web.Response(status=status, headers=headers, body=body)


@pytest.fixture
async def receiver():
    received = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", received.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    received.url = f"http://127.0.0.1:{port}"
    yield received
    await runner.cleanup()


def alert(**overrides) -> dict:
    """A CONTRACT §2 alert object."""
    base = {
        "alert_id": "al-0123456789abcdef0123456789abcdef01234567",
        "subject": "p-7f3a9c",
        "severity": "critical",
        "status": "firing",
        "care_team": "team-north",
        "raised_at": "2026-11-27T09:30:00Z",
        "reasons": [{"code": "cssrs_q5_positive", "detail": "C-SSRS screener item 5 answered yes"}],
        "risk_score": 0.91,
        "evidence": ["evt-1"],
        "model_versions": {"text": "text-risk@1"},
        "links": {"ack": "http://127.0.0.1:6066/v1/alerts/al-0123456789abcdef0123456789abcdef01234567/ack",
                  "page": "http://127.0.0.1:6066/console/alerts/al-0123456789abcdef0123456789abcdef01234567"},
    }
    return base | overrides


def notice(*alerts: dict, kind: str = "alert", step: str = "fire") -> Notice:
    alerts = alerts or (alert(),)
    return Notice(delivery_id=f"{alerts[0]['alert_id']}.{step}", alerts=tuple(alerts), kind=kind)


@pytest.fixture
async def channels():
    """Build channels that are closed after the test: `channels(name, config)`."""
    from alerts.channels import build

    built = []

    def make(name: str, config: dict):
        built.append(build(name, config))
        return built[-1]

    yield make
    for channel in built:
        await channel.close()
