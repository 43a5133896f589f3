"""Delivery that loses nothing: at least once per channel, retried by one stage that reads the outcome.

`Retrier.check` decides from the classified error alone (alerts/exceptions):
retriable errors (5xx, timeouts, refused connections, 429) wait an
exponential backoff with full jitter, and never less than a `Retry-After`
the service gave; other errors are final at once. When the budget (attempts
and elapsed time) is spent, `deliver` says so, and the caller sends the
route's fallback and dead-letters the notice with the error. Every attempt
is reported to `on_attempt` (metrics, the audit trail) with its outcome.
The notice, and so its delivery id (`webhook-id`), is the same on every try.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .channels import Channel, Notice
from .exceptions import DeliveryError, Faulted, TimedOut

__all__ = ["Attempt", "Outcome", "Retrier", "deliver"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retrier:
    #: tries in all, the first included
    attempts: int = 8
    #: no retry starts later than this after the first try
    budget: float = 600.0
    base: float = 1.0
    cap: float = 120.0

    def check(self, error: DeliveryError, *, attempt: int, elapsed: float, rng: random.Random) -> float | None:
        """Seconds to wait before try `attempt + 1`, or None when this error is final."""
        if not error.retriable or attempt >= self.attempts:
            return None
        delay = rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay if elapsed + delay <= self.budget else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    channel: str
    delivery_id: str
    attempt: int
    seconds: float
    error: DeliveryError | None


#: the jitter of retries when the caller gives none: one for the process, not one seeded from the OS per delivery
#: (1 to 2% of the worker's time at 1,000 events/s in py-spy)
_JITTER = random.Random()


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    delivered: bool
    attempts: int
    error: DeliveryError | None = None


async def deliver(
    channel: Channel,
    notice: Notice,
    *,
    retrier: Retrier,
    timeout: float,
    on_attempt: Callable[[Attempt], None] = lambda attempt: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> Outcome:
    """Send `notice` on `channel` until it is taken, the error is final, or the budget is spent."""
    rng = rng or _JITTER
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        began = clock()
        error: DeliveryError | None = None
        try:
            await asyncio.wait_for(channel.send(notice), timeout)
        except asyncio.TimeoutError:
            error = TimedOut(f"{channel.name}: no answer within {timeout:g} s")
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # the type and frames only: a message could quote the alert
            log.error("channel %s failed on %s: %s\n%s", channel.name, notice.delivery_id, type(exc).__name__,
                      "".join(traceback.format_tb(exc.__traceback__)))
            error = Faulted(f"{channel.name}: the channel failed ({type(exc).__name__})")
        on_attempt(Attempt(channel=channel.name, delivery_id=notice.delivery_id, attempt=attempt,
                           seconds=clock() - began, error=error))
        if error is None:
            return Outcome(delivered=True, attempts=attempt)
        delay = retrier.check(error, attempt=attempt, elapsed=clock() - started, rng=rng)
        if delay is None:
            return Outcome(delivered=False, attempts=attempt, error=error)
        await sleep(delay)
