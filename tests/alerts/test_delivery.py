"""The retry stage: decided from the classified outcome alone, against a real HTTP server."""

from __future__ import annotations

import base64
import random

import pytest

from alerts.delivery import Retrier, deliver
from alerts.exceptions import Rejected, Unavailable
from tests.alerts.conftest import notice
from tests.processes import free_port

SECRET = "whsec_" + base64.b64encode(b"delivery test secret....").decode()


class Sleeps:
    """A controllable clock: sleeping advances it at once, and the waits are kept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def webhook(channels):
    return lambda url: channels("hook", {"type": "webhook", "url": url, "secret": SECRET, "timeout": 1})


async def test_5xx_is_retried_with_the_same_webhook_id_until_taken(receiver, webhook):
    receiver.answer((503, {}, b""), (502, {}, b""), (500, {}, b""))
    clock, attempts = Sleeps(), []
    outcome = await deliver(webhook(receiver.url), notice(), retrier=Retrier(), timeout=2, on_attempt=attempts.append,
                            sleep=clock.sleep, clock=clock.clock, rng=random.Random(1))
    assert outcome.delivered and outcome.attempts == 4
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert [type(a.error).__name__ if a.error else None for a in attempts] == [
        "Unavailable", "Unavailable", "Unavailable", None]
    assert all(0 <= wait <= 2 ** i for i, wait in enumerate(clock.waits))


async def test_429_waits_at_least_its_retry_after(receiver, webhook):
    receiver.answer((429, {"Retry-After": "30"}, b""))
    clock = Sleeps()
    outcome = await deliver(webhook(receiver.url), notice(), retrier=Retrier(), timeout=2, sleep=clock.sleep,
                            clock=clock.clock, rng=random.Random(2))
    assert outcome.delivered and clock.waits[0] >= 30


async def test_other_4xx_is_not_retried(receiver, webhook):
    receiver.answer((401, {}, b"bad token"))
    outcome = await deliver(webhook(receiver.url), notice(), retrier=Retrier(), timeout=2)
    assert not outcome.delivered and outcome.attempts == 1 and isinstance(outcome.error, Rejected)
    assert len(receiver.requests) == 1


async def test_a_hanging_endpoint_times_out_and_is_retried(receiver, webhook):
    receiver.answer((0, {}, b""))  # never answers
    clock = Sleeps()
    outcome = await deliver(webhook(receiver.url), notice(), retrier=Retrier(), timeout=0.5, sleep=clock.sleep,
                            clock=clock.clock)
    assert outcome.delivered and outcome.attempts == 2


async def test_the_budget_ends_retries_and_the_last_error_is_reported(webhook):
    clock = Sleeps()
    outcome = await deliver(webhook(f"http://127.0.0.1:{free_port()}/"), notice(),
                            retrier=Retrier(attempts=5, budget=3600), timeout=2, sleep=clock.sleep, clock=clock.clock)
    assert not outcome.delivered and outcome.attempts == 5 and isinstance(outcome.error, Unavailable)
    assert len(clock.waits) == 4


@pytest.mark.parametrize(("error", "expected"), [
    (Unavailable("x", status=503), True),
    (Unavailable("x", status=503, retry_after=10_000), False),  # beyond the budget: final now, fallback next
    (Rejected("x", status=400), False),
])
def test_retrier_decides_from_the_error_alone(error, expected):
    decision = Retrier(budget=600).check(error, attempt=1, elapsed=0, rng=random.Random(0))
    assert (decision is not None) == expected
