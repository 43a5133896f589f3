"""The pipeline in a process of its own, beside the worker's: the one code path, run on the other core.

The worker was one core of Python doing everything (Kafka's clients, the stores, routing), and the
pipeline was half of it. Now `Pipeline.handle_batch` runs in a child process that the ingest agent starts
(spawned: a fresh interpreter that loads its own models), and works on the next batch while the agent
delivers and stores the last one. The code that decides is the same as `carewatch evaluate`'s; only where
it runs changed.

What crosses to the child: a batch's record values and content-type headers, each person's state as the
agent last wrote it (bytes, or None), and `now`. What comes back: per record, its outcome and what goes on
a topic (values encoded already), each changed person's new state in bytes, and the scoring calls for the
metrics. The child keeps the states it parsed beside their bytes (`store.Parsed`), so a person seen again
is not parsed again; a state is taken from there only when the bytes the agent hands over are the same.

A child that dies is started again and the batch handed over again: nothing of it was written, so it is
decided again from the same states. A worker killed outright takes its child with it (the socket ends, and
the child checks that its parent is there every second).

Measured (README, "Numbers"): the worker 27% faster in the same hour (median 4,606 against 3,618 events/s),
alert latency at 1,000 events/s no worse. A first version through a ProcessPoolExecutor, with the changelog
awaited before the next batch's outputs, made alerts 15 to 25 ms slower at the median.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import pickle
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from ..exceptions import PipelineProcessError
from ..pipeline import Outcome, Pipeline
from ..state import PersonState
from .store import Parsed

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Decided", "Handled", "Offload", "Told", "handle"]

log = logging.getLogger(__name__)

#: people whose parsed state the child keeps between batches (about 8 KB each with its bytes; the parse was 6% of
#: the worker's time in py-spy): the most recent
PARSED_STATES = 4_096
#: young objects the cyclic collector lets pass before it looks, per event of the largest batch: a batch holds 10 to
#: 20 an event until its answer is written (offline on the bench mix, 500 events a batch). At most YOUNG_MAX, so that
#: cyclic garbage, should some code make it again, is collected after that many objects whatever `batch_max` is.
YOUNG_PER_EVENT = 40
YOUNG_MAX = 100_000


class Told:
    """The pipeline's StateStore for one batch in the child: the bytes the agent handed over, parsed once.

    A person the agent did not hand over (a record keyed otherwise than by its subject) is `missing`: the
    batch is decided again once the agent has looked that person up.
    """

    def __init__(self, stored: dict[bytes, bytes | None], parsed: Parsed[PersonState]) -> None:
        self._stored = stored
        self._parsed = parsed
        self.staged: dict[str, PersonState] = {}
        self.missing: set[bytes] = set()

    def get(self, subject: str) -> PersonState | None:
        key = subject.encode()
        if key not in self._stored:
            self.missing.add(key)
            return None
        raw = self._stored[key]
        if raw is None:
            return None
        state = self._parsed.take(key, raw)
        return state if state is not None else PersonState.loads(raw)

    def put(self, subject: str, state: PersonState) -> None:
        self.staged[subject] = state


class Decided(NamedTuple):
    """One record's outcome, as the agent needs it: labels, and what goes on which topic.

    A tuple rather than a dataclass: the worker unpickles one per event, 0.8 µs against 5.2 µs.
    """

    stream: str  # the event's consent stream, or "invalid"
    outcome: str
    subject: str | None = None
    event_time: float | None = None
    #: a dead letter's code and message (names the field; never quotes the event)
    error: tuple[str, str] | None = None
    #: the risk record, encoded
    record: bytes | None = None
    #: (alert encoded, care team, severity, first reason's code)
    alerts: tuple[tuple[bytes, str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Handled:
    outcomes: list[Decided]
    #: subject (bytes) -> new state (bytes)
    states: dict[bytes, bytes]
    #: (model, rows, seconds) of each scoring call
    scored: list[tuple[str, int, float]]
    #: people the agent did not hand over: nothing else is set, the batch goes again with them
    missing: frozenset[bytes] = frozenset()


# -- in the child --------------------------------------------------------------------------------

_child: dict[str, Any] = {}


def _start(settings: Settings, parent: int) -> None:
    # a worker killed outright (SIGKILL) leaves its child behind: it goes too, within a second
    threading.Thread(target=_end_with, args=(parent,), name="carewatch-orphan-check", daemon=True).start()
    pipeline = Pipeline.from_settings(settings)
    scored: list[tuple[str, int, float]] = []
    pipeline.scorer.observe = lambda model, rows, seconds: scored.append((model, rows, seconds))
    _child.update(pipeline=pipeline, parsed=Parsed(capacity=PARSED_STATES), scored=scored)
    # What start-up built (modules, models) lives as long as the child: frozen out of the collector's sight, as in
    # the worker (cli.py). At the default threshold (700) a batch saw 10 or more young collections, each moving on
    # what the batch held, and the full collections that followed (one or two a second at full speed, about 80 ms
    # each) walked it all again. Past a batch's worth, what a batch made is freed by its count before anyone looks.
    gc.collect()
    gc.freeze()
    gc.set_threshold(min(YOUNG_PER_EVENT * settings.worker.batch_max, YOUNG_MAX), 10, 10)


def _end_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def handle(records: list[tuple[bytes, str | None]], stored: dict[bytes, bytes | None], now: float) -> Handled:
    """One batch through the pipeline (in the child; in-process in tests)."""
    pipeline, parsed, scored = _child["pipeline"], _child["parsed"], _child["scored"]
    states = Told(stored, parsed)
    results = pipeline.handle_batch(records, states=states, now=now)
    if states.missing:
        scored.clear()
        return Handled(outcomes=[], states={}, scored=[], missing=frozenset(states.missing))
    outcomes = []
    for result in results:
        event = result.event
        outcomes.append(Decided(
            stream=event.stream if event else "invalid",
            outcome=result.outcome.value,
            subject=event.subject if event else None,
            event_time=event.timestamp if event else None,
            error=(result.error.code, str(result.error)) if result.outcome is Outcome.DEAD_LETTERED else None,
            record=orjson.dumps(result.record) if result.outcome is Outcome.PROCESSED else None,
            alerts=tuple((orjson.dumps(alert.to_dict()), alert.care_team, alert.severity, alert.reasons[0].code)
                         for alert in result.alerts),
        ))
    changed = {}
    for subject, state in states.staged.items():
        key, value = subject.encode(), state.dumps()
        parsed.keep(key, value, state)
        changed[key] = value
    handled = Handled(outcomes=outcomes, states=changed, scored=list(scored))
    scored.clear()
    return handled


# -- in the worker -------------------------------------------------------------------------------

class Offload:
    """The child process, and one socket to it that the worker's event loop reads and writes itself: no thread
    in between (a thread of the worker waits for the GIL, up to 5 ms a switch, at every hand-over)."""

    def __init__(self, *, settings: Settings) -> None:
        self._settings = settings
        self._process: multiprocessing.process.BaseProcess | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the child and wait until its models are loaded."""
        self.stop()
        ours, theirs = socket.socketpair()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(theirs, self._settings, os.getpid()), name="carewatch-pipeline", daemon=True)
        self._process.start()
        theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        try:
            if await self._receive() != _READY:
                raise PipelineProcessError("the pipeline's process did not start")
        except BaseException:
            self.stop()
            raise

    async def handle(self, records: list[tuple[bytes, str | None]], stored: dict[bytes, bytes | None],
                     now: float) -> Handled:
        """A batch through the child. A child that died is started again at the next call (the caller's retry)."""
        async with self._lock:
            if self._writer is None:
                await self.start()
            try:
                self._writer.write(_frame(pickle.dumps((records, stored, now), protocol=5)))
                await self._writer.drain()
                answer = pickle.loads(await self._receive())
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                log.error("the pipeline's process ended; it starts again for the batch")
                self.stop()
                raise PipelineProcessError("the pipeline's process ended") from exc
        if isinstance(answer, str):  # the type of an error raised while deciding
            raise PipelineProcessError(f"the pipeline's process could not decide the batch ({answer})")
        return answer

    async def _receive(self) -> bytes:
        (size,) = _SIZE.unpack(await self._reader.readexactly(_SIZE.size))
        return await self._reader.readexactly(size)

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(1)
            self._process = None


_SIZE = struct.Struct(">I")
_READY = b"ready"


def _frame(payload: bytes) -> bytes:
    return _SIZE.pack(len(payload)) + payload


def _serve(sock: socket.socket, settings: Settings, parent: int) -> None:
    """The child's life: load, say so, then answer batch after batch until the worker hangs up."""
    _start(settings, parent)
    with sock, sock.makefile("rwb") as stream:
        stream.write(_frame(_READY))
        stream.flush()
        while header := stream.read(_SIZE.size):
            (size,) = _SIZE.unpack(header)
            records, stored, now = pickle.loads(stream.read(size))
            try:
                answer: Handled | str = handle(records, stored, now)
            except Exception as exc:  # the type only crosses back: a message could quote an event
                answer = type(exc).__name__
            stream.write(_frame(pickle.dumps(answer, protocol=5)))
            stream.flush()
