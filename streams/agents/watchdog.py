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
unready, since an alert agent retrying through a short broker outage reads
nothing for a while either. Each stall's log line says where the records
stand on the way to the agent (faust's flow and partition sets, aiokafka's
fetched records and positions), so that a stall can be explained after the
fact.

If that does not help, the worker exits (code 70) for its supervisor to
start it again (compose's `restart: unless-stopped`, systemd's
`Restart=always`): after a broker restart aiokafka can leave a send or a
fetch waiting for ever (the chaos suite saw both; aio-libs/aiokafka#1101),
and a new process resumes from the committed offsets and the changelogs,
losing nothing. A guard that makes no broker calls exits when, for
`worker.stall_exit`: partitions of either agent stay stalled (nudges do not
stop that clock), a send waits for the broker, or the watchdog itself
cannot finish a check. A stalled alerting agent is a crisis nobody is told
of; a restart costs seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

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
        #: when the current stall began; a nudge restarts `_since`, not this
        self._stuck: float | None = None
        #: when the watchdog last finished a check (monotonic)
        self.checked = time.monotonic()

    @property
    def stalled_since(self) -> float | None:
        """When the current stall began (None if there is none): nudges since then do not count."""
        return self._stuck if self._reads == self._seen_reads else None

    def on_read(self, partition: int, offset: int) -> None:
        self.read[partition] = offset + 1
        self._reads += 1

    def on_handled(self) -> None:
        """A batch went through: a busy agent with a full queue is slow, not stalled."""
        self._reads += 1

    def reset(self) -> None:
        """Nothing is expected of the agent now (no partitions, or a rebalance or restore under way)."""
        self._since = self._stuck = None

    def restart(self, now: float) -> None:
        """Start the clock again (after a nudge)."""
        self._seen_reads, self._since = self._reads, now

    def stalled(self, *, now: float, ends: dict[int, int], committed: dict[int, int]) -> set[int]:
        """Partitions whose records wait while nothing has been read or handled for `stall_timeout`."""
        waiting = {p for p, end in ends.items() if end > max(self.read.get(p, 0), committed.get(p, 0))}
        if self._reads != self._seen_reads or not waiting:
            self._seen_reads, self._since, self._stuck = self._reads, now, None
            return set()
        if self._since is None:
            self._since = now
        if now - self._since < self.stall_timeout:
            return set()
        if self._stuck is None:
            self._stuck = self._since
        return waiting


#: the exit code of a worker that gave up on a wedged client: its supervisor starts it again
EXIT_WEDGED = 70


def wedged(progress: Progress, *, now: float, stall_exit: float, stalled: bool,
           routing: Progress | None = None) -> str | None:
    """Why the worker should exit and start again, or None."""
    if stalled and progress.stalled_since is not None and now - progress.stalled_since >= stall_exit:
        return f"partitions stayed stalled for {now - progress.stalled_since:.0f} s"
    if routing is not None and (since := routing.stalled_since) is not None and now - since >= stall_exit:
        return f"the alerting agent read nothing for {now - since:.0f} s while alerts waited"
    if now - progress.checked >= stall_exit:
        return f"the watchdog could not finish a check for {now - progress.checked:.0f} s"
    if (waited := oldest_wait(now)) >= stall_exit:
        return f"a send has waited {waited:.0f} s for the broker"
    return None


def on_the_way(consumer: Any, tps: Iterable[Any]) -> str:
    """Where records of `tps` stand between the broker and the agent: offsets, flags and counts only."""
    try:
        return _on_the_way(consumer, tps)
    except Exception as exc:  # noqa: BLE001 - a diagnosis must never stop the watchdog
        return f"not known: {type(exc).__name__}"


def _on_the_way(consumer: Any, tps: Iterable[Any]) -> str:
    fetcher = getattr(getattr(getattr(consumer, "_thread", None), "_consumer", None), "_fetcher", None)
    parts = [f"flow {'on' if consumer.flow_active else 'off'}"]
    if fetcher is not None:
        task = getattr(fetcher, "_fetch_task", None)
        parts.append(f"fetching {'stopped' if task is None or task.done() else 'on'}, "
                     f"{len(fetcher._records)} partitions fetched and not taken, {len(fetcher._in_flight)} in flight")
    for tp in sorted(tps):
        flags = [name for name, held in (("active", consumer._active_partitions or ()),
                                          ("paused", consumer._paused_partitions),
                                          ("buffered", consumer._buffered_partitions)) if tp in held]
        where = f"{tp.topic}[{tp.partition}]: {'/'.join(flags) or 'inactive'}, read {consumer._read_offset.get(tp)}"
        if fetcher is not None:
            state = fetcher._subscriptions.subscription
            state = state.assignment.state_value(tp) if state and state.assignment else None
            where += (", not assigned in the client" if state is None else
                      f", position {state.position if state.has_valid_position else 'unset'}"
                      f"{' paused' if state.paused else ''}{' fetched' if tp in fetcher._records else ''}")
        parts.append(where)
    return "; ".join(parts)


def awaiting(agent: Any) -> str:
    """Where each actor of a faust agent waits: its chain of awaits, as function names and line numbers."""
    chains = []
    for actor in list(getattr(agent, "_actors", ())):
        task, names = getattr(actor, "actor_task", None), []
        # faust's task awaits the actor, whose coroutine its await hides: start from that coroutine itself
        step = getattr(actor, "it", None) or (task.get_coro() if task is not None else None)
        while step is not None and len(names) < 30:
            frame = getattr(step, "cr_frame", None) or getattr(step, "ag_frame", None)
            if frame is not None:
                names.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            step = getattr(step, "cr_await", None) or getattr(step, "ag_await", None)
        chains.append(" > ".join(names) or "nothing")
    return " | ".join(chains) or "no actor"


def install(worker: Worker, progress: Progress, *, routing: Progress) -> None:
    app = worker.app
    interval = max(1.0, min(10.0, progress.stall_timeout / 4))
    stall_exit = worker.settings.worker.stall_exit

    @app.task
    async def guard() -> None:
        while True:
            await asyncio.sleep(1.0)
            why = wedged(progress, now=time.monotonic(), stall_exit=stall_exit, stalled=bool(worker.stalled),
                         routing=routing)
            if why is not None:
                log.critical("exiting for the supervisor to start the worker again: %s (nothing is lost: a new "
                             "process resumes from the committed offsets)", why)
                logging.shutdown()
                os._exit(EXIT_WEDGED)

    routed = {worker.alerts.get_topic_name(), worker.commands.get_topic_name()}
    alerting = app.agents.get("carewatch.alerting")

    async def nudge(consumer, partitions: list, *, again: Any = None) -> None:
        """Resume `partitions` and the flow; seek them where `again` says, or every partition to its committed
        offset."""
        worker.metrics.stall_nudges.inc()
        consumer.resume_partitions(partitions)
        consumer.resume_flow()
        app.flow_control.resume()
        await (again(partitions) if again is not None else consumer.perform_seek())

    async def watch_routing(consumer) -> None:
        held = [tp for tp in consumer.assignment() if tp.topic in routed]
        if not held:
            routing.reset()
            return
        ends = dict(await consumer.highwaters(*held))
        committed = {tp: offset for tp, offset in consumer._committed_offset.items()
                     if tp.topic in routed and offset is not None}
        stalled = routing.stalled(now=time.monotonic(), ends=ends, committed=committed)
        if stalled:
            log.error("stalled: %s have records waiting and the alerting agent read none for %.0f s; resuming "
                      "them and reading them again from where the agent got to (%s)",
                      ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in stalled)), routing.stall_timeout,
                      f"{on_the_way(consumer, stalled)}; the agent waits in {awaiting(alerting)}")
            await nudge(consumer, list(stalled), again=worker.alerting.continuity.read_again)
            routing.restart(time.monotonic())  # the nudge gets its time before the next one

    @app.timer(interval, name="carewatch.watchdog")
    async def watch() -> None:
        from ..app import readiness  # the app imports its agents, so not at the top

        consumer = app.consumer
        topic = worker.events.get_topic_name()
        held = [tp for tp in consumer.assignment() if tp.topic == topic]
        if not held or not readiness(app)[0]:
            progress.reset()
            routing.reset()
            worker.stalled = set()
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
