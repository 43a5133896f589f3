"""The dedupe memory against a plain model of CONTRACT §1: a repeat of a key seen within the window is a duplicate,
and at most `limit` keys are remembered, the oldest forgotten first."""

from __future__ import annotations

import math
import random

import orjson

from streams.dedupe import SeenIds, event_key


class Model:
    def __init__(self) -> None:
        self.seen: dict[str, int] = {}  # key -> when first seen (ms, rounded up), oldest first

    def check_and_add(self, key: str, *, now: float, window: float, limit: int) -> bool:
        now_ms = math.ceil(now * 1000)
        self.seen = {k: at for k, at in self.seen.items() if at >= now_ms - window * 1000}
        if key in self.seen:
            return False
        self.seen[key] = now_ms
        self.seen = dict(list(self.seen.items())[-limit:])
        return True


def test_the_memory_decides_as_the_model_and_reads_back_the_same():
    rng = random.Random(20)
    keys = [event_key("app://test", f"e-{i}") for i in range(60)]
    for window, limit in ((5.0, 1_000), (1_000.0, 7), (2.5, 12)):
        seen, model, now = SeenIds(), Model(), 1_793_491_200.0
        for step in range(3_000):
            now += rng.choice((0.0, 0.0004, 0.3, 1.7, 4.0))
            key = rng.choice(keys)
            assert seen.check_and_add(key, now=now, window=window, limit=limit) is \
                model.check_and_add(key, now=now, window=window, limit=limit), (window, limit, step)
            assert len(seen) == len(model.seen) <= limit
            if step % 97 == 0:  # a state written and read back goes on deciding the same
                seen = SeenIds.from_json(orjson.loads(orjson.dumps(seen.to_json())))
        assert len(model.seen) > 1  # the run kept several at a time, and forgot some (below)
    assert SeenIds.from_pairs([["0f455bd08f408887", 1.0]]).check_and_add(
        event_key("app://test", "w-1"), now=2.0, window=10, limit=10)  # an unrelated key is new


def test_a_long_idle_person_forgets_everything_at_once():
    seen = SeenIds()
    for i in range(5_000):
        seen.check_and_add(event_key("s", str(i)), now=1_000.0 + i, window=86_400, limit=20_000)
    assert seen.check_and_add(event_key("s", "0"), now=1_000.0 + 86_400 * 3, window=86_400, limit=20_000)
    assert len(seen) == 1 and orjson.loads(orjson.dumps(seen.to_json()))["ms"] == [math.ceil((1_000.0 + 86_400 * 3) * 1000)]


def test_a_key_is_eleven_characters_of_base64():
    key = event_key("app://test", "j-1")
    assert len(key) == 11 and key != event_key("app://test", "j-2") and key != event_key("app://other", "j-1")


def test_the_window_and_the_bound_are_kept_to_the_millisecond_and_the_setting():
    seen = SeenIds()
    assert seen.check_and_add("a" * 11, now=100.0, window=60, limit=10)
    assert not seen.check_and_add("a" * 11, now=160.0, window=60, limit=10)  # the window's last millisecond
    assert seen.check_and_add("a" * 11, now=220.001, window=60, limit=10)
    for i in range(9):
        seen.check_and_add(f"{i:011d}", now=221.0, window=60, limit=10)
    assert len(seen) == 10
    seen.check_and_add("b" * 11, now=222.0, window=60, limit=3)  # a lower bound in the config: down to it at once
    assert len(seen) == 3 and not seen.check_and_add("b" * 11, now=223.0, window=60, limit=3)
