"""The ingest path end to end on the real broker, reconciled record by record.

10,000 events of every type through the SDK (1% invalid, 1% duplicated), the
invalid ones also sent past the SDK as raw records, and 1,000 through the
HTTP gateway; one worker process; then every record is accounted for from
what the output topics hold, not only from counters. Below it, a record
keyed otherwise than by its subject, and the pipeline's process: its reuse of
parsed states and its restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import orjson
import pytest

from streams.agents import ingest
from streams.dedupe import event_key
from streams.agents.offload import Told
from streams.agents.store import Parsed
from streams.publish import Publisher
from streams.state import PersonState
from streams.topics import DLQ, EVENTS, RISK
from tests.conftest import ROOT
from tests.factory import broken, event, random_valid
from tests.processes import GatewayProcess, free_port, wait_for

pytestmark = pytest.mark.kafka

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
TOKEN = "suite-token"


def build_stream(rng: random.Random):
    """(events to publish in order, the invalid records with their codes)."""
    subjects = [f"p-ing{i:03d}" for i in range(200)]
    consented = set(subjects[:180])
    stream: list[dict] = [
        event("consent", subject=s, source="app://test/enrol", when=T0 - timedelta(days=1), event_id=f"{s}-c")
        for s in sorted(consented)
    ]
    for n in range(9_620):
        subject = rng.choice(subjects)
        when = T0 + timedelta(minutes=rng.randrange(0, 20 * 24 * 60))
        stream.append(random_valid(rng, subject=subject, source="app://test/sdk", when=when, event_id=f"sdk-{n}"))
    data_events = stream[len(consented):]
    invalid = [broken(rng, rng.choice(data_events)) for _ in range(100)]
    for raw, code in invalid:  # interleave: the SDK must refuse them wherever they are
        stream.insert(rng.randrange(len(consented), len(stream)), {"__raw__": raw, "__code__": code})
    for original in rng.sample(data_events, 100):
        stream.insert(rng.randrange(stream.index(original) + 1, len(stream) + 1), original)
    return stream, consented


def test_every_event_is_accounted_for(topics, worker_factory, tmp_path):
    rng = random.Random(20261127)
    stream, consented = build_stream(rng)
    assert len(stream) == 10_000

    worker = worker_factory()

    # 1. Through the SDK: invalid events are refused before sending, with their codes.
    with Publisher(bootstrap_servers=topics.bootstrap, topic=topics.name(EVENTS)) as publisher:
        items = [item.get("__raw__", item) for item in stream]
        receipts = publisher.publish_many(items)
    expected_codes = [item["__code__"] for item in stream if "__raw__" in item]
    refused = [r for r in receipts if r.rejected]
    assert [r.error.code for r in refused] == expected_codes
    assert all(r.ok and r.partition is not None for r in receipts if not r.rejected)
    invalid_raw = [item["__raw__"] for item in stream if "__raw__" in item]

    # 2. Past the SDK, as raw records: the worker must dead-letter each, byte for byte.
    topics.send_raw([(b"p-ing000", raw) for raw in invalid_raw])

    # 3. Through the gateway: 1,000 events, 10 invalid, 10 repeats of SDK events.
    gateway = GatewayProcess(
        root=ROOT, workdir=tmp_path / "gateway", bootstrap=topics.bootstrap, prefix=topics.prefix, port=free_port(),
        clients={"suite": {"token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "sources": ["app://test/*"]}},
    )
    gateway.start()
    sdk_valid = [item for item in stream if "__raw__" not in item]
    via_gateway = [
        random_valid(rng, subject=f"p-ing{rng.randrange(200):03d}", source="app://test/gateway",
                     when=T0 + timedelta(minutes=rng.randrange(20 * 24 * 60)), event_id=f"gw-{n}")
        for n in range(980)
    ]
    bad_for_gateway = [{**e, "subject": "not valid!"} for e in via_gateway[:10]]
    repeats = rng.sample(sdk_valid[180:], 10)
    batch = via_gateway + bad_for_gateway + repeats
    rng.shuffle(batch)
    accepted = rejected = 0
    try:
        for start in range(0, len(batch), 100):
            response = httpx.post(
                f"{gateway.url}/v1/events", content=orjson.dumps(batch[start:start + 100]),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/cloudevents-batch+json"},
                timeout=30,
            )
            assert response.status_code == 202, response.text
            accepted += response.json()["accepted"]
            rejected += response.json()["rejected"]
    finally:
        gateway.stop()
    assert (accepted, rejected) == (990, 10)

    # 4. Wait for one outcome per record on the topic, then reconcile.
    on_topic = topics.count(EVENTS)
    assert on_topic == 9_900 + 100 + 990
    outcomes = worker.wait_outcomes(on_topic)

    unique: dict[tuple[str, str], dict] = {}
    for e in sdk_valid + via_gateway + repeats:
        unique.setdefault((e["source"], e["id"]), e)
    processed = {
        key for key, e in unique.items()
        if e["type"] == "org.carewatch.consent.v1" or e["subject"] in consented
    }
    dropped = set(unique) - processed
    assert outcomes == {
        "processed": len(processed),
        "consent_dropped": len(dropped),
        "duplicate": 100 + 10,
        "dead_lettered": 100,
    }

    # Processed events: exactly one downstream record each, and nothing else.
    risk = [orjson.loads(r.value) for r in topics.read_all(RISK)]
    assert Counter((r["source"], r["event_id"]) for r in risk) == Counter(processed)
    assert all(r["subject"].encode() for r in risk)

    # Dead letters: the original bytes, with a reason naming the field and a stable code.
    dlq = topics.read_all(DLQ)
    assert sorted(r.value for r in dlq) == sorted(invalid_raw)
    code_of = dict(zip(invalid_raw, expected_codes))
    for record in dlq:
        headers = dict(record.headers)
        assert headers["carewatch-error-code"].decode() == code_of[record.value]
        assert headers["carewatch-error"].decode().split(":")[0]
    metrics = worker.metrics()
    by_code = Counter(expected_codes)
    for code, count in by_code.items():
        assert metrics[("carewatch_ingest_dead_letters_total", (("code", code),))] == count


def test_a_record_keyed_otherwise_is_decided_from_its_subjects_own_state(topics, worker_factory):
    """The agent hands the pipeline's process the states of the batch's keys; a record whose key is not its
    subject is decided again once that person's state is looked up (here: the consent it holds)."""
    worker = worker_factory()
    consent = event("consent", subject="p-key001", source="app://test/enrol", when=T0, event_id="k-c")
    topics.send_raw([(b"p-key001", orjson.dumps(consent))])
    assert worker.wait_outcomes(1)["processed"] == 1
    sleep = event("wearable", subject="p-key001", when=T0 + timedelta(hours=1), event_id="k-1")
    topics.send_raw([(b"p-someone-else", orjson.dumps(sleep))])
    outcomes = worker.wait_outcomes(2)
    assert outcomes["processed"] == 2 and outcomes["consent_dropped"] == 0
    assert worker.metrics()[("carewatch_ingest_key_mismatch_total", ())] == 1
    assert {orjson.loads(r.value)["event_id"] for r in topics.read_all(RISK)} == {"k-c", "k-1"}


def test_a_persons_state_waits_for_the_store_interval_and_the_offsets_wait_for_the_state(topics, worker_factory,
                                                                                          run_id, tmp_path):
    """Changed by several batches within `worker.store_interval`, a person's state is written once; the events'
    offsets are committed only after it is on the broker, so a crash before that decides them all again."""
    config = {"worker": {"batch_max": 4, "batch_wait": 0, "store_interval": 8}}
    first = worker_factory(name="first", config=config)
    rng = random.Random(5)
    events = [event("consent", subject="p-store01", source="app://test/enrol", when=T0, event_id="st-c")]
    events += [random_valid(rng, subject="p-store01", source="app://test/sdk", when=T0 + timedelta(hours=n + 1),
                            event_id=f"st-{n}") for n in range(19)]
    topics.send_raw([(b"p-store01", orjson.dumps(e)) for e in events])
    every = {"processed": 20, "consent_dropped": 0, "duplicate": 0, "dead_lettered": 0}
    assert first.wait_outcomes(20) == every
    assert first.metrics("carewatch_ingest_batch_events_count")[("carewatch_ingest_batch_events_count", ())] >= 5
    people, changelog, group = dataclasses.replace(topics, prefix=""), f"t{run_id}-people-changelog", f"t{run_id}"
    # Decided and delivered in 5 batches or more, none stored: so none committed, though faust's commit timer runs
    # (every 2.8 s) while this looks.
    looked = time.monotonic()
    while time.monotonic() - looked < 3.5:
        assert (people.count(changelog), topics.lag(group, EVENTS)) == (0, 20)
    first.kill()
    second = worker_factory(name="second", config=config, data_dir=tmp_path / "empty-store")
    assert second.wait_outcomes(20) == every  # decided again from the start, as if the first had never seen them
    wait_for(lambda: topics.lag(group, EVENTS) == 0, timeout=60, what="the offsets committed")
    [record] = people.read_all(changelog)
    state = PersonState.loads(record.value)
    assert record.key == b"p-store01"
    assert not any(state.seen.check_and_add(event_key(e["source"], e["id"]), now=time.time(), window=86400,
                                            limit=100) for e in events)  # one record, every batch's ids in it
    assert topics.count(RISK) == 40  # each event's risk record twice: at least once


def test_a_rebalance_stores_the_waiting_states_before_the_partitions_move(topics, worker_factory, run_id):
    """States waiting for the store interval are stored, and their offsets committed, when a worker joins: the
    partitions' next owner decides nothing again."""
    config = {"worker": {"store_interval": 30}}
    first = worker_factory(name="first", config=config)
    subjects = [f"p-move{i:02d}" for i in range(24)]
    events = [event("consent", subject=s, source="app://test/enrol", when=T0, event_id=f"mv-{s}") for s in subjects]
    topics.send_raw([(e["subject"].encode(), orjson.dumps(e)) for e in events])
    first.wait_outcomes(24)
    decided = time.monotonic()
    people, changelog, group = dataclasses.replace(topics, prefix=""), f"t{run_id}-people-changelog", f"t{run_id}"
    assert people.count(changelog) == 0
    second = worker_factory(name="second", config=config)
    wait_for(lambda: people.count(changelog) == 24, timeout=60, what="every state stored")
    assert time.monotonic() - decided < 30  # by the rebalance, not by the interval
    wait_for(lambda: first.assigned() and second.assigned(), timeout=60, what="both workers to hold partitions")
    wait_for(lambda: topics.lag(group, EVENTS) == 0, timeout=30, what="the offsets committed")
    assert sum(second.outcomes().values()) == 0 and topics.count(RISK) == 24  # nothing decided again


def test_a_record_as_large_as_the_topic_takes_is_dead_lettered_whole_and_the_stream_goes_on(topics, worker_factory):
    """Its dead letter is the record and two headers: a dead-letter topic that took no more than carewatch.events
    refused it, the send was tried again for good and no event after it was handled."""
    worker = worker_factory()
    largest = b"{" + b" " * 1_048_448 + b"}"  # about the most carewatch.events takes (MAX_BATCH_BYTES)
    consent = event("consent", subject="p-big001", source="app://test/enrol", when=T0, event_id="big-c")
    topics.send_raw([(b"p-big001", largest), (b"p-big001", orjson.dumps(consent))])
    outcomes = worker.wait_outcomes(2)
    assert outcomes["dead_lettered"] == 1 and outcomes["processed"] == 1
    wait_for(lambda: topics.count(DLQ) == 1 and topics.count(RISK) == 1, timeout=60,
             what="the dead letter and the consent's risk record")
    [letter] = topics.read_all(DLQ)
    assert letter.value == largest and dict(letter.headers)["carewatch-error-code"] == b"too_large"


def _staged(table: dict, parsed, *subjects: str):
    """A batch's StateStore in the pipeline's process, as the agent hands over what the table holds."""
    return Told({s.encode(): table.get(s.encode()) for s in subjects}, parsed)


def test_a_parsed_state_is_reused_only_while_the_table_holds_what_was_written():
    parsed, table = Parsed(capacity=2), {}
    state = PersonState()
    state.consent.record(streams=["wearable"], granted=True, at=1.0)
    table[b"p-1"] = state.dumps()
    parsed.keep(b"p-1", table[b"p-1"], state)
    assert _staged(table, parsed, "p-1").get("p-1") is state  # same bytes: the parse is skipped

    # handed out once: the pipeline changes it in place, and a batch that is never stored must leave nothing behind
    assert _staged(table, parsed, "p-1").get("p-1") is not state

    # the table changed otherwise (restored from the changelog, written by another worker): the table wins
    parsed.keep(b"p-1", table[b"p-1"], state)
    withdrawn = PersonState()
    withdrawn.consent.record(streams=["wearable"], granted=False, at=2.0)
    table[b"p-1"] = withdrawn.dumps()
    read = _staged(table, parsed, "p-1").get("p-1")
    assert read is not state and not read.consent.allows("wearable", 3.0)


def test_parsed_states_keep_the_most_recent_people_only():
    parsed, table = Parsed(capacity=2), {}
    states = {}
    for subject in ("p-1", "p-2", "p-3"):
        states[subject] = PersonState()
        table[subject.encode()] = states[subject].dumps()
        parsed.keep(subject.encode(), table[subject.encode()], states[subject])
    got = {s: _staged(table, parsed, s).get(s) for s in states}
    assert got["p-1"] is not states["p-1"]
    assert got["p-2"] is states["p-2"] and got["p-3"] is states["p-3"]


def test_a_person_not_handed_over_is_missing_rather_than_new():
    """A record keyed otherwise than by its subject: the agent looks that person up and the batch goes again."""
    told = _staged({}, Parsed(capacity=2), "p-1")
    assert told.get("p-1") is None and not told.missing  # handed over, and new
    assert told.get("p-2") is None and told.missing == {b"p-2"}


def test_a_pipeline_process_that_dies_is_started_again_and_decides_the_batch_as_before():
    """Nothing of a batch is written until its decisions come back, so handing it over again is safe."""
    import asyncio
    import signal

    from streams.agents.offload import Offload
    from streams.config import load
    from streams.exceptions import PipelineProcessError

    consent = orjson.dumps(event("consent", subject="p-off001", source="app://test/enrol", when=T0, event_id="o-c"))
    records = [(consent, None)]

    async def run():
        offload = Offload(settings=load(None))
        await offload.start()
        try:
            first = await offload.handle(records, {b"p-off001": None}, T0.timestamp() + 60)
            os.kill(offload._process.pid, signal.SIGKILL)
            with pytest.raises(PipelineProcessError, match="ended"):
                await offload.handle(records, {b"p-off001": None}, T0.timestamp() + 60)
            again = await offload.handle(records, {b"p-off001": None}, T0.timestamp() + 60)  # a new child, started for it
            # an error while deciding comes back as its type only, and the child goes on
            with pytest.raises(PipelineProcessError, match=r"\(TypeError\)"):
                await offload.handle([(None, None)], {}, T0.timestamp() + 60)
            assert (await offload.handle(records, {b"p-off001": None}, T0.timestamp() + 60)).states == again.states
            return first, again
        finally:
            offload.stop()

    first, again = asyncio.run(run())
    assert [d.outcome for d in first.outcomes] == ["processed"] and first.states == again.states
    assert [d.outcome for d in again.outcomes] == ["processed"]


def test_the_agent_decides_from_the_state_it_last_decided_and_forgets_it_at_a_rebalance(monkeypatch):
    monkeypatch.setattr(ingest, "KEPT_STATES", 2)
    latest = ingest._Decided().of(0)
    unknown = ingest._UNKNOWN
    assert latest.get(b"p-1") is unknown  # never decided here: read from the store
    latest.update({b"p-1": b"s1", b"p-2": b"t1"})
    latest.update({b"p-1": b"s2"})  # a later batch, decided before the first is written
    latest.written(b"p-1", b"s1")
    assert latest.get(b"p-1") == b"s2"  # the later batch's value stays until that batch is written
    latest.written(b"p-1", b"s2")
    latest.written(b"p-2", b"t1")
    assert (latest.get(b"p-1"), latest.get(b"p-2")) == (b"s2", b"t1")  # written, and still at hand
    latest.update({b"p-4": b"u1"})
    latest.written(b"p-3", b"r1")  # past KEPT_STATES written: the least recently written goes to the store's keeping
    assert latest.get(b"p-1") is unknown and latest.get(b"p-3") == b"r1"
    assert latest.get(b"p-4") == b"u1"  # what is not yet written is never let go
    assert latest.of(0) is latest and latest.get(b"p-2") == b"t1"
    # a rebalance: the store may now hold what another worker wrote, restored from the changelog
    assert all(latest.of(1).get(key) is unknown for key in (b"p-2", b"p-3", b"p-4"))
