"""The stall watchdog: records waiting on a held partition, and none read for a while, is an alarm.

A worker that holds partitions, reports ready and reads nothing while
records wait is the worst failure carewatch can have: it looks healthy and
misses crises. An earlier version of our batching did exactly that after a
rebalance (faust's take_events(); see the README). The watchdog compares, for
every partition of carewatch.events this worker holds, the broker's end
offset with the next offset the agent has read; when records wait and the
agent has read nothing for `worker.stall_timeout`, the worker says so in
/readyz (503, "stalled"), in `carewatch_ingest_stalled_partitions` and in
its log, and nudges faust: resume the partitions and the flow, and seek to
the committed offsets (whatever is re-read is a duplicate to the state).

The alerting agent is watched the same way on carewatch.alerts and its
commands topic: a partition whose last records never reached the agent
(faust's fetcher can drop them after a rebalance, and no later record comes
to show the gap) is nudged alike, and logged; it does not make the worker
unready nor exit, since an alert agent retrying through a broker outage
reads nothing for a while either.

If that does not help, the worker exits (code 70) for its supervisor to
start it again (compose's `restart: unless-stopped`, systemd's
`Restart=always`): after a broker restart aiokafka can leave a send or a
fetch waiting for ever (the chaos suite saw both; aio-libs/aiokafka#1101),
and a new process resumes from the committed offsets and the changelogs,
losing nothing. A guard that makes no broker calls exits when, for
`worker.stall_exit`: partitions stay stalled, a send waits for the broker,
or the watchdog itself cannot finish a check.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from .produce import oldest_wait

if TYPE_CHECKING:
    from ..app import Worker

__all__ = ["Progress", "install"]

log = logging.getLogger(__name__)


class Progress:
    """Decides, from what was read and what waits, which partitions are stalled."""

    def __init__(self, *, stall_timeout: float) -> None:
        self.stall_timeout = stall_timeout
        self.read: dict[int, int] = {}  # partition -> next offset the agent will read
        self._reads = 0
        self._seen_reads = 0
        self._since: float | None = None
        #: when the watchdog last finished a check (monotonic)
        self.checked = time.monotonic()

    @property
    def stalled_since(self) -> float | None:
        return self._since if self._reads == self._seen_reads else None

    def on_read(self, partition: int, offset: int) -> None:
        self.read[partition] = offset + 1
        self._reads += 1

    def on_handled(self) -> None:
        """A batch went through: a busy agent with a full queue is slow, not stalled."""
        self._reads += 1

    def restart(self, now: float) -> None:
        """Start the clock again (after a nudge)."""
        self._seen_reads, self._since = self._reads, now

    def stalled(self, *, now: float, ends: dict[int, int], committed: dict[int, int]) -> set[int]:
        """Partitions whose records wait while nothing has been read or handled for `stall_timeout`."""
        waiting = {p for p, end in ends.items() if end > max(self.read.get(p, 0), committed.get(p, 0))}
        if self._reads != self._seen_reads or not waiting:
            self._seen_reads, self._since = self._reads, now
            return set()
        if self._since is None:
            self._since = now
        return waiting if now - self._since >= self.stall_timeout else set()


#: the exit code of a worker that gave up on a wedged client: its supervisor starts it again
EXIT_WEDGED = 70


def wedged(progress: Progress, *, now: float, stall_exit: float, stalled: bool) -> str | None:
    """Why the worker should exit and start again, or None."""
    if stalled and progress.stalled_since is not None and now - progress.stalled_since >= stall_exit:
        return f"partitions stayed stalled for {now - progress.stalled_since:.0f} s"
    if now - progress.checked >= stall_exit:
        return f"the watchdog could not finish a check for {now - progress.checked:.0f} s"
    if (waited := oldest_wait(now)) >= stall_exit:
        return f"a send has waited {waited:.0f} s for the broker"
    return None


def install(worker: Worker, progress: Progress, *, routing: Progress) -> None:
    app = worker.app
    interval = max(1.0, min(10.0, progress.stall_timeout / 4))
    stall_exit = worker.settings.worker.stall_exit

    @app.task
    async def guard() -> None:
        while True:
            await asyncio.sleep(1.0)
            why = wedged(progress, now=time.monotonic(), stall_exit=stall_exit, stalled=bool(worker.stalled))
            if why is not None:
                log.critical("exiting for the supervisor to start the worker again: %s (nothing is lost: a new "
                             "process resumes from the committed offsets)", why)
                logging.shutdown()
                os._exit(EXIT_WEDGED)

    routed = {worker.alerts.get_topic_name(), worker.commands.get_topic_name()}

    async def nudge(consumer, partitions: list) -> None:
        """Resume `partitions` and the flow, and seek every partition to its committed offset."""
        worker.metrics.stall_nudges.inc()
        consumer.resume_partitions(partitions)
        consumer.resume_flow()
        app.flow_control.resume()
        await consumer.perform_seek()

    async def watch_routing(consumer) -> None:
        held = [tp for tp in consumer.assignment() if tp.topic in routed]
        if not held:
            return
        ends = dict(await consumer.highwaters(*held))
        committed = {tp: offset for tp, offset in consumer._committed_offset.items()
                     if tp.topic in routed and offset is not None}
        stalled = routing.stalled(now=time.monotonic(), ends=ends, committed=committed)
        if stalled:
            log.error("stalled: %s have records waiting and the alerting agent read none for %.0f s; resuming "
                      "them and seeking to committed offsets",
                      ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in stalled)), routing.stall_timeout)
            await nudge(consumer, list(stalled))
            routing.restart(time.monotonic())  # the nudge gets its time before the next one

    @app.timer(interval, name="carewatch.watchdog")
    async def watch() -> None:
        from ..app import readiness  # the app imports its agents, so not at the top

        consumer = app.consumer
        topic = worker.events.get_topic_name()
        held = [tp for tp in consumer.assignment() if tp.topic == topic]
        if not held or not readiness(app)[0]:
            progress._since, worker.stalled = None, set()
            worker.metrics.stalled.set(0)
            progress.checked = time.monotonic()
            return
        ends = {tp.partition: end for tp, end in (await consumer.highwaters(*held)).items()}
        committed = {tp.partition: offset for tp, offset in consumer._committed_offset.items()
                     if tp.topic == topic and offset is not None}
        worker.metrics.lag.clear()
        for partition, end in ends.items():
            worker.metrics.lag.labels(str(partition)).set(
                max(0, end - max(progress.read.get(partition, 0), committed.get(partition, 0))))
        stalled = progress.stalled(now=time.monotonic(), ends=ends, committed=committed)
        worker.stalled = stalled
        worker.metrics.stalled.set(len(stalled))
        if stalled:
            log.error("stalled: partitions %s of %s have records waiting and none was read for %.0f s; "
                      "resuming them and seeking to committed offsets", sorted(stalled), topic,
                      progress.stall_timeout)
            await nudge(consumer, [tp for tp in held if tp.partition in stalled])
        else:
            await watch_routing(consumer)
        progress.checked = time.monotonic()
