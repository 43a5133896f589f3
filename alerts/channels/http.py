"""What the HTTP channels share: one POST, its answer classified into alerts.exceptions."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field

from ..exceptions import RateLimited, Rejected, TimedOut, Unavailable

__all__ = ["JsonChannel", "Poster", "UrlConfig", "retry_after"]


def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class Poster:
    """POSTs bodies to one channel's endpoint; a session of its own, closed with the channel."""

    def __init__(self, *, channel: str, timeout: float) -> None:
        self.channel = channel
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            async with self._session.post(url, data=body, headers=dict(headers)) as response:
                answer = await response.read()
                status = response.status
                if status < 300:
                    return answer
                said = f"{self.channel}: HTTP {status}"
                if status == 429:
                    raise RateLimited(said, status=status, retry_after=retry_after(response.headers.get("Retry-After")))
                if status >= 500 or status == 408:
                    raise Unavailable(said, status=status, retry_after=retry_after(response.headers.get("Retry-After")))
                raise Rejected(said, status=status)
        except asyncio.TimeoutError:
            raise TimedOut(f"{self.channel}: no answer within {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise Unavailable(f"{self.channel}: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class UrlConfig(BaseModel):
    """A channel that needs only its endpoint (Slack and Teams incoming webhooks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(pattern=r"^https?://")
    timeout: float = Field(default=10.0, gt=0)


class JsonChannel:
    """A channel that POSTs one JSON body per notice to `config.url`: Slack, Teams, PagerDuty."""

    per_alert = False

    def __init__(self, *, name: str, config) -> None:
        self.name = name
        self.config = config
        self._poster = Poster(channel=name, timeout=config.timeout)

    def body(self, notice) -> dict:
        raise NotImplementedError

    async def send(self, notice) -> None:
        await self._poster.post(self.config.url, orjson.dumps(self.body(notice)), {"content-type": "application/json"})

    async def close(self) -> None:
        await self._poster.close()
