"""The stall watchdog's decision: records waiting and nothing read for stall_timeout is a stall."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP

from streams.agents.watchdog import Progress, awaiting, on_the_way, wedged


def test_waiting_records_and_no_read_for_the_timeout_is_a_stall():
    progress = Progress(stall_timeout=60)
    progress.on_read(3, 99)  # next offset to read on partition 3 is 100
    ends = {3: 150, 4: 10}
    assert progress.stalled(now=0, ends=ends, committed={4: 10}) == set()
    assert progress.stalled(now=59, ends=ends, committed={4: 10}) == set()
    assert progress.stalled(now=60, ends=ends, committed={4: 10}) == {3}


def test_any_read_restarts_the_clock():
    progress = Progress(stall_timeout=60)
    ends = {0: 5}
    assert progress.stalled(now=0, ends=ends, committed={}) == set()
    progress.on_read(0, 0)
    assert progress.stalled(now=61, ends=ends, committed={}) == set()
    assert progress.stalled(now=120, ends=ends, committed={}) == set()
    assert progress.stalled(now=121, ends=ends, committed={}) == {0}


def test_an_idle_stream_with_nothing_waiting_is_never_stalled():
    progress = Progress(stall_timeout=1)
    progress.on_read(0, 41)
    for now in range(0, 100, 10):
        assert progress.stalled(now=now, ends={0: 42, 1: 7}, committed={1: 7}) == set()


def test_waiting_behind_a_committed_offset_counts_when_nothing_was_read_since_assignment():
    progress = Progress(stall_timeout=10)
    assert progress.stalled(now=0, ends={7: 30}, committed={7: 20}) == set()
    assert progress.stalled(now=10, ends={7: 30}, committed={7: 20}) == {7}


def test_a_busy_agent_that_handles_batches_is_not_stalled_while_its_reader_waits():
    progress = Progress(stall_timeout=10)
    ends = {0: 5000}
    progress.on_read(0, 1999)  # the reader's queue is full: it reads nothing more for a while
    assert progress.stalled(now=0, ends=ends, committed={}) == set()
    for now in (5, 10, 15, 20):
        progress.on_handled()
        assert progress.stalled(now=now, ends=ends, committed={}) == set()
    assert progress.stalled(now=30, ends=ends, committed={}) == {0}


def test_partitions_of_several_topics_are_told_apart_and_a_nudge_starts_the_clock_again():
    progress = Progress(stall_timeout=5)  # the alerting agent's: carewatch.alerts and its commands topic
    alerts, commands = ("carewatch.alerts", 6), ("carewatch.alerts.commands", 6)
    progress.on_read(alerts, 9)
    ends = {alerts: 10, commands: 4}
    assert progress.stalled(now=0, ends=ends, committed={commands: 3}) == set()
    assert progress.stalled(now=5, ends=ends, committed={commands: 3}) == {commands}  # alerts[6] is read to its end
    progress.restart(5)
    assert progress.stalled(now=9, ends=ends, committed={commands: 3}) == set()
    assert progress.stalled(now=10, ends=ends, committed={commands: 3}) == {commands}


def test_a_stall_that_outlasts_stall_exit_or_a_stuck_check_or_send_makes_the_worker_exit():
    progress = Progress(stall_timeout=5)
    progress.checked = 100.0
    ends = {0: 5}
    assert progress.stalled(now=100, ends=ends, committed={}) == set()
    assert progress.stalled(now=105, ends=ends, committed={}) == {0}
    assert wedged(progress, now=105, stall_exit=30, stalled=True) is None
    progress.checked = 129.0
    assert "stalled for 30 s" in wedged(progress, now=130, stall_exit=30, stalled=True)
    progress.on_read(0, 4)  # reading again: no longer a reason
    assert wedged(progress, now=130, stall_exit=30, stalled=False) is None
    assert "could not finish a check" in wedged(progress, now=160, stall_exit=30, stalled=False)


async def test_a_send_that_waits_past_stall_exit_is_a_reason_to_exit():
    import asyncio
    import time

    from streams.agents import produce

    class Never:  # a producer whose broker never answers
        class client:
            @staticmethod
            async def _wait_on_metadata(topic):
                return {0}

        class _metadata:
            @staticmethod
            def partitions_for_topic(topic):
                return {0}

        def _partition(self, *args):
            return 0

        def create_batch(self):
            class Batch:
                def append(self, **record):
                    return object()

                def close(self):
                    pass
            return Batch()

        async def send_batch(self, batch, topic, *, partition):
            return asyncio.get_running_loop().create_future()

    class Topic:
        class app:
            class producer:
                @staticmethod
                def _ensure_producer():
                    return Never()

        def get_topic_name(self):
            return "t"

    waiting = asyncio.create_task(produce.send_all([{"topic": Topic(), "key": b"k", "value": b"v"}]))
    await asyncio.sleep(0.05)
    progress = Progress(stall_timeout=5)
    progress.checked = time.monotonic() + 31  # the watchdog itself is fine
    assert wedged(progress, now=time.monotonic() + 31, stall_exit=30, stalled=False).startswith("a send has waited")
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert produce.oldest_wait(time.monotonic()) == 0.0


def test_a_stalled_alerting_agent_makes_the_worker_exit_however_often_it_was_nudged():
    progress, routing = Progress(stall_timeout=5), Progress(stall_timeout=5)
    ends = {("carewatch.alerts", 0): 4}
    assert routing.stalled(now=0, ends=ends, committed={}) == set()
    assert routing.stalled(now=5, ends=ends, committed={}) == {("carewatch.alerts", 0)}
    for now in (10, 15, 20, 25, 30):  # nudged every time, and nothing read
        routing.restart(now)
        routing.stalled(now=now + 5, ends=ends, committed={})
        assert routing.stalled_since == 0
    assert wedged(progress, now=34, stall_exit=35, stalled=False, routing=routing) is None
    assert "alerting agent read nothing for 35 s" in wedged(progress, now=35, stall_exit=35, stalled=False,
                                                             routing=routing)
    routing.on_read(("carewatch.alerts", 0), 0)  # it reads again: no reason to exit
    routing.stalled(now=36, ends=ends, committed={})
    assert routing.stalled_since is None
    assert wedged(progress, now=36, stall_exit=35, stalled=False, routing=routing) is None


def test_a_stall_says_where_the_records_stand_on_the_way_to_the_agent():
    tp, other = TP("carewatch.alerts", 3), TP("carewatch.alerts", 4)
    state = SimpleNamespace(has_valid_position=True, position=17, paused=True)
    fetcher = SimpleNamespace(_fetch_task=None, _records={tp: object()}, _in_flight=set(),
                              _subscriptions=SimpleNamespace(subscription=SimpleNamespace(
                                  assignment=SimpleNamespace(state_value={tp: state}.get))))
    consumer = SimpleNamespace(flow_active=True, _active_partitions={other}, _paused_partitions=set(),
                               _buffered_partitions={tp}, _read_offset={tp: 12},
                               _thread=SimpleNamespace(_consumer=SimpleNamespace(_fetcher=fetcher)))
    said = on_the_way(consumer, [tp, other])
    assert said.startswith("flow on; fetching stopped, 1 partitions fetched and not taken, 0 in flight; ")
    assert "carewatch.alerts[3]: buffered, read 12, position 17 paused fetched" in said
    assert "carewatch.alerts[4]: active, read None, not assigned in the client" in said
    assert on_the_way(SimpleNamespace(), [tp]) == "not known: AttributeError"


async def test_a_stall_says_where_the_agent_waits():
    gate = asyncio.Event()

    async def inner() -> None:
        await gate.wait()

    async def handle() -> None:
        await inner()

    coroutine = handle()
    task = asyncio.ensure_future(coroutine)
    await asyncio.sleep(0)
    for actor in (SimpleNamespace(actor_task=None, it=coroutine),  # faust's task awaits the actor: start from `it`
                  SimpleNamespace(actor_task=task, it=None)):
        said = awaiting(SimpleNamespace(_actors=[actor]))
        assert said.startswith("handle:") and " > inner:" in said and " > wait:" in said
    gate.set()
    await task
    assert awaiting(SimpleNamespace(_actors=[])) == "no actor"
