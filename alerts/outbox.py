"""The outbox: runs the dispatcher's sends, each once at a time, digests gathered per team and channel.

`submit` is idempotent on a send's key: a send already running or waiting
for its digest is not started twice (the worker submits everything pending
again after a restart or a rebalance). A delivery that fails on its channel
goes to the route's fallback; `on_done` hears the final outcome of every
send (the channel that took it, or None), `on_attempt` every try. `stop()`
cancels what runs: those sends stay pending in the book and go out again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping

from .channels import Channel, Notice
from .delivery import Attempt, Retrier, deliver
from .dispatch import Send
from .exceptions import DeliveryError, Rejected

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

#: (the sends, the channel that took them or None, the error of each channel that failed)
Done = Callable[[list[Send], str | None, dict[str, DeliveryError]], Awaitable[None]]


class Outbox:
    def __init__(self, *, channels: Mapping[str, Channel], retrier: Retrier, on_done: Done,
                 on_attempt: Callable[[Attempt], None] = lambda attempt: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.channels = channels
        self.retrier = retrier
        self.on_done = on_done
        self.on_attempt = on_attempt
        self.clock = clock
        self._running: dict[str, asyncio.Task] = {}
        self._finished: set[str] = set()  # outcome reported, not yet recorded in the book
        self._digests: dict[tuple[str, str], dict[str, Send]] = defaultdict(dict)
        self._flusher: asyncio.Task | None = None

    async def start(self) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_digests())

    async def stop(self) -> None:
        tasks = [t for t in [self._flusher, *self._running.values()] if t is not None]
        self._flusher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        self._digests.clear()
        for channel in self.channels.values():
            await channel.close()

    async def __aenter__(self) -> Outbox:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def busy(self, key: str) -> bool:
        return key in self._running or key in self._finished or any(key in b for b in self._digests.values())

    def settle(self, key: str) -> None:
        """The book has recorded this send's outcome: a later submit of the key is a new send."""
        self._finished.discard(key)

    def submit(self, send: Send) -> None:
        if self.busy(send.key):
            return
        if send.digest:
            self._digests[(send.channel, send.notice.alerts[0]["care_team"])][send.key] = send
            return
        self._start([send], send.notice)

    def _start(self, sends: list[Send], notice: Notice) -> None:
        task = asyncio.create_task(self._run(sends, notice))
        for send in sends:
            self._running[send.key] = task
        task.add_done_callback(lambda _: [self._running.pop(s.key, None) for s in sends])

    async def _run(self, sends: list[Send], notice: Notice) -> None:
        first = sends[0]
        used: str | None = None
        errors: dict[str, DeliveryError] = {}
        for name in [first.channel, first.fallback] if first.fallback else [first.channel]:
            channel = self.channels.get(name)
            if channel is None:  # removed from the config since the notice was decided: given up, and said so
                errors[name] = Rejected(f"{name}: no channel of that name in the config")
                continue
            outcome = await deliver(channel, notice, retrier=self.retrier, timeout=_timeout(channel),
                                    on_attempt=self.on_attempt)
            if outcome.delivered:
                used = name
                break
            errors[name] = outcome.error
        keys = {s.key for s in sends}
        self._finished |= keys  # before on_done: the book may record the outcome before on_done returns
        try:
            await self.on_done(sends, used, errors)
        except asyncio.CancelledError:
            self._finished -= keys
            raise
        except Exception as exc:  # the sends stay pending in the book and go out again after a restart
            self._finished -= keys
            log.error("recording the outcome of %s failed: %s", notice.delivery_id, type(exc).__name__)

    async def _flush_digests(self) -> None:
        while True:
            now = self.clock()
            for (channel, team), bucket in list(self._digests.items()):
                if bucket and min(s.after for s in bucket.values()) <= now:
                    sends = sorted(bucket.values(), key=lambda s: s.notice.alerts[0]["raised_at"])
                    del self._digests[(channel, team)]
                    ids = "".join(s.key for s in sends).encode()
                    notice = Notice(delivery_id=f"digest-{hashlib.sha256(ids).hexdigest()[:40]}",
                                    alerts=tuple(s.notice.alerts[0] for s in sends), kind="digest")
                    self._start(sends, notice)
            await asyncio.sleep(0.5)


def _timeout(channel: Channel) -> float:
    """The retry stage's guard around one send: the channel's own timeout, with a margin."""
    return getattr(getattr(channel, "config", None), "timeout", 10.0) + 5.0
