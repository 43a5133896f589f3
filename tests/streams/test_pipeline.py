"""The one code path, offline: each record to exactly one outcome, state kept right."""

from __future__ import annotations

import gc
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from streams.config import DetectionSettings, IngestSettings, Settings
from streams.pipeline import Outcome, Pipeline
from streams.state import PersonState
from streams.topics import MAX_BATCH_BYTES
from tests.factory import event

T0 = datetime(2026, 11, 1, 9, tzinfo=timezone.utc)
NOW = T0.timestamp() + 7 * 86400


class Dict(dict):
    """The replay's StateStore: a dict of encoded states, like the worker's table."""

    def get(self, subject):  # type: ignore[override]
        raw = super().get(subject)
        return PersonState.loads(raw) if raw is not None else None

    def put(self, subject, state):
        self[subject] = state.dumps()


def handle(pipeline, states, e, now=NOW):
    return pipeline.handle(orjson.dumps(e), states=states, now=now)


def make(**ingest) -> Pipeline:
    return Pipeline.from_settings(Settings(ingest=IngestSettings(**ingest)))


@pytest.fixture(scope="module")
def pipeline():
    return make()


def test_consent_then_event_is_processed_with_a_downstream_record(pipeline):
    states = Dict()
    assert handle(pipeline, states, event("consent", when=T0)).outcome is Outcome.PROCESSED
    e = event("text", text="Feeling low tonight", when=T0 + timedelta(minutes=1), event_id="j-1")
    result = handle(pipeline, states, e)
    assert result.outcome is Outcome.PROCESSED
    assert result.record["event_id"] == "j-1"
    assert result.record["subject"] == "p-test01"
    assert "data" not in result.record and b"Feeling" not in orjson.dumps(result.record)


def test_no_consent_means_dropped(pipeline):
    result = handle(pipeline, Dict(), event("wearable"))
    assert result.outcome is Outcome.CONSENT_DROPPED


def test_consent_is_per_stream(pipeline):
    states = Dict()
    handle(pipeline, states, event("consent", when=T0, streams=["wearable"]))
    later = T0 + timedelta(hours=1)
    assert handle(pipeline, states, event("wearable", when=later)).outcome is Outcome.PROCESSED
    assert handle(pipeline, states, event("text", when=later)).outcome is Outcome.CONSENT_DROPPED


def test_consent_applies_by_event_time_even_out_of_order(pipeline):
    states = Dict()
    handle(pipeline, states, event("consent", when=T0))
    handle(pipeline, states, event("consent", when=T0 + timedelta(days=2), granted=False))
    # arrives after the revoke, but happened while consent was granted
    assert handle(pipeline, states, event("survey", when=T0 + timedelta(days=1))).outcome is Outcome.PROCESSED
    # happened before the grant, and after the revoke
    assert handle(pipeline, states, event("survey", when=T0 - timedelta(seconds=1))).outcome is Outcome.CONSENT_DROPPED
    assert handle(pipeline, states, event("survey", when=T0 + timedelta(days=2))).outcome is Outcome.CONSENT_DROPPED
    # a grant covers events at its own time
    assert handle(pipeline, states, event("survey", when=T0)).outcome is Outcome.PROCESSED


def test_consent_can_be_switched_off(pipeline):
    relaxed = make(consent_required=False)
    assert handle(relaxed, Dict(), event("text")).outcome is Outcome.PROCESSED


def test_a_repeat_of_source_and_id_is_a_duplicate_even_if_dropped_for_consent(pipeline):
    states = Dict()
    e = event("text", event_id="same")
    assert handle(pipeline, states, e).outcome is Outcome.CONSENT_DROPPED
    assert handle(pipeline, states, e).outcome is Outcome.DUPLICATE
    other_source = {**e, "source": "app://other"}
    assert handle(pipeline, states, other_source).outcome is Outcome.CONSENT_DROPPED


def test_duplicates_are_remembered_for_the_window_only():
    pipeline = make(dedupe_window=60, consent_required=False)
    states = Dict()
    e = event("text", event_id="again")
    assert handle(pipeline, states, e, now=NOW).outcome is Outcome.PROCESSED
    assert handle(pipeline, states, e, now=NOW + 59).outcome is Outcome.DUPLICATE
    assert handle(pipeline, states, e, now=NOW + 61).outcome is Outcome.PROCESSED


def test_dedupe_memory_is_bounded_per_person():
    pipeline = make(dedupe_max_per_subject=100, consent_required=False)
    states = Dict()
    for i in range(250):
        handle(pipeline, states, event("wearable", event_id=f"w-{i}"))
    assert len(PersonState.loads(states["p-test01"]).seen) == 100
    assert handle(pipeline, states, event("wearable", event_id="w-249")).outcome is Outcome.DUPLICATE


def test_a_state_at_the_largest_dedupe_memory_fits_one_changelog_record():
    """The state is one record of the people changelog: past the broker's limit it would be sent again for good."""
    largest = IngestSettings.model_fields["dedupe_max_per_subject"].metadata
    bound = next(m.le for m in largest if hasattr(m, "le"))
    pipeline = make(dedupe_max_per_subject=bound, consent_required=False, dedupe_window=10 * 86_400)
    states = Dict()
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    events = [orjson.dumps(event("wearable", event_id=f"w-{i:06d}", when=start + timedelta(seconds=i * 4.123457)))
              for i in range(bound + 10)]  # every id with a timestamp of many digits
    for first in range(0, len(events), 2_000):
        pipeline.handle_batch([(e, None) for e in events[first:first + 2_000]], states=states, now=None)
    assert len(PersonState.loads(states["p-test01"]).seen) == bound
    assert len(states["p-test01"]) < MAX_BATCH_BYTES - 64 * 1024


def test_state_holds_no_event_content(pipeline):
    states = Dict()
    handle(pipeline, states, event("consent", when=T0))
    handle(pipeline, states, event("text", text="a very private sentence", when=T0, source="app://journal/ios",
                                   event_id="secret-id-123"))
    stored = states["p-test01"]
    for fragment in (b"private", b"journal", b"secret-id-123"):
        assert fragment not in stored


def test_elevated_scores_are_explained_without_running_the_model_twice():
    pipeline = Pipeline.from_settings(Settings(detection=DetectionSettings(watch_low=0)))  # explain every score
    runs = []
    pipeline.scorer.observe = lambda name, rows, seconds: runs.append((name, rows))
    later = T0 + timedelta(hours=1)
    batch = [event("consent", when=T0), event("survey", when=later, items=[3, 3, 3, 3, 3, 3, 3, 3, 0]),
             event("wearable", when=later, metric="sleep_duration", value=3.0)]
    results = pipeline.handle_batch([(orjson.dumps(e), None) for e in batch], states=Dict(), now=NOW)
    assert [r.outcome for r in results] == [Outcome.PROCESSED] * 3
    assert [name for name, _ in runs].count("deviation") == 1
    top = results[1].record["top_features"]
    assert "phq9_total" in [name for name, _ in top] and all(value > 0 for _, value in top)
    assert "explain" not in results[1].record


def test_invalid_records_are_dead_lettered_with_their_error(pipeline):
    result = pipeline.handle(b"{oops", states=Dict(), now=NOW)
    assert result.outcome is Outcome.DEAD_LETTERED
    assert result.error.code == "malformed_json"


def test_a_dead_letter_does_not_keep_its_batch_as_cyclic_garbage(pipeline):
    nameless = event("text")
    del nameless["id"]
    records = [(raw, None) for raw in (b"{oops", b'{"id": "\xff"}', orjson.dumps(nameless), orjson.dumps(event("text")))]
    gc.collect()
    gc.disable()  # no collection in between: what the batch leaves unreachable is counted below
    try:
        results = pipeline.handle_batch(records, states=Dict(), now=NOW)
        assert [r.error.code for r in results[:3]] == ["malformed_json", "invalid_utf8", "missing_attribute"]
        assert results[2].error.field == "id" and "id" in str(results[2].error)  # what a dead letter's headers say
        del results
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_future_events_are_dead_lettered_but_the_replay_can_skip_the_clock(pipeline):
    e = event("text", when=T0 + timedelta(days=30))
    assert pipeline.handle(orjson.dumps(e), states=Dict(), now=NOW).error.code == "time_in_future"
    assert pipeline.handle(orjson.dumps(e), states=Dict(), now=NOW, check_future=False).outcome is Outcome.CONSENT_DROPPED


def test_an_internal_failure_dead_letters_the_event_instead_of_losing_it(pipeline, caplog):
    class Broken(Dict):
        def get(self, subject):
            raise RuntimeError(" ".join(["a", "private", "sentence"]))  # the message must not reach the log

    result = handle(pipeline, Broken(), event("text"))
    assert result.outcome is Outcome.DEAD_LETTERED
    assert result.error.code == "internal_error"
    assert "RuntimeError" in caplog.text and "a private sentence" not in caplog.text


def test_state_written_by_the_first_release_still_loads():
    v1 = b'{"v":1,"consent":{"text":[[1793523600.0,true]]},"seen":[["00e49fb3f76e398d",1793527200.0]]}'
    state = PersonState.loads(v1)
    assert state.consent.allows("text", 1793523600.0) and len(state.seen) == 1
    assert PersonState.loads(state.dumps()).consent.allows("text", 1793523600.0)


#: a person's state as version 2 wrote it (consent, a wearable event w-1 seen at NOW, a survey s-1 at NOW + 0.25):
#: the dedupe memory held (hex key, seconds) pairs
V2 = (b'{"v":2,"consent":{"text":[[1793523600.0,true]],"survey":[[1793523600.0,true]],"wearable":[[1793523600.0,'
      b'true]]},"seen":[["0f455bd08f408887",1794128400.0],["451de10a3abf2877",1794128400.0],["8cca5e2cd42a201e",'
      b'1794128400.25]],"features":{"series":{"sleep_duration":[0.0,0.0,0,[[20758,6.5]]],"resting_heart_rate":[0.0,'
      b'0.0,0,[]],"hrv_rmssd":[0.0,0.0,0,[]],"step_count":[0.0,0.0,0,[]],"mood":[0.0,0.0,0,[]]},"phq9":[5,null],'
      b'"gad7":null,"style":[0.0,0.0,0.0],"wearable_days":[20758]},"detection":[{},null,{},0.0,1793530800.0]}')


@pytest.mark.parametrize("written", ["version 2", "read back"])
def test_state_of_version_2_still_loads_with_its_dedupe_memory(pipeline, written):
    state = PersonState.loads(V2)
    assert orjson.loads(orjson.dumps(state.features.to_dict())) == orjson.loads(V2)["features"]
    if written == "read back":  # version 3's own encoding of the same memory decides the same
        raw = state.dumps()
        assert orjson.loads(raw)["v"] == 3 and len(raw) < len(V2)
        state = PersonState.loads(raw)
    survey = event("survey", when=T0 + timedelta(hours=2), event_id="s-1")
    for now, outcome in ((NOW + 60, Outcome.DUPLICATE), (NOW + 86_400.2, Outcome.DUPLICATE),
                         (NOW + 86_400.3, Outcome.PROCESSED)):  # s-1 was seen at NOW + 0.25, to the millisecond
        states = Dict(); states.put("p-test01", state)  # noqa: E702
        assert handle(pipeline, states, survey, now=now).outcome is outcome, now
    states = Dict(); states.put("p-test01", state)  # noqa: E702
    assert handle(pipeline, states, event("wearable", event_id="w-1"), now=NOW + 60).outcome is Outcome.DUPLICATE
