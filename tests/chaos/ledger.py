"""What the chaos suite sent, what each record must become, and the reconciliation against the output topics.

Expectations come from the offline code path (the same `Pipeline` over the
same records in send order, states in a dict), never from a worker's own
counters, which a SIGKILL loses. A record that earns a risk record must
have one on carewatch.risk; a record that must be dead-lettered must be in
carewatch.events.dlq byte for byte with its error code; duplicates and
consent drops earn nothing. Alerts: the set of (id, severity) on
carewatch.alerts equals the offline set; repeats (at least once) are counted.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import orjson

from models.simulator import CohortConfig, simulate
from streams.config import Settings
from streams.pipeline import Outcome, Pipeline
from streams.replay import DictStates
from streams.topics import ALERTS, DLQ, RISK
from tests.factory import broken, event

__all__ = ["Ledger", "Reconciliation", "cohort", "crises", "ledger", "poisoned", "reconcile"]


@dataclass
class Ledger:
    records: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value), in send order
    scored: set[tuple[str, str]] = field(default_factory=set)  # (source, id) due on carewatch.risk
    dead: dict[bytes, str] = field(default_factory=dict)  # bytes due on the DLQ -> error code
    dropped: Counter = field(default_factory=Counter)  # duplicate / consent_dropped: no record due
    alerts: set[tuple[str, str]] = field(default_factory=set)  # (alert_id, severity)
    texts: set[str] = field(default_factory=set)  # event free text: must appear in no output but the DLQ


@dataclass
class Reconciliation:
    events: int
    lost: int
    wrong_code: int
    alerts: int
    duplicated_alerts: int
    missing_alerts: set
    extra_alerts: set

    def assert_clean(self) -> None:
        assert self.lost == 0, f"{self.lost} events lost"
        assert self.wrong_code == 0, f"{self.wrong_code} dead letters with the wrong code"
        assert not self.missing_alerts, f"alerts missing: {sorted(self.missing_alerts)[:5]}"
        assert not self.extra_alerts, f"alerts no undisturbed run raises: {sorted(self.extra_alerts)[:5]}"


def cohort(*, people: int, days: int, seed: int) -> list[tuple[bytes, bytes]]:
    events = simulate(CohortConfig(people=people, days=days, seed=seed, episode_share=0.5)).events()
    return [(e["subject"].encode(), orjson.dumps(e)) for e in events]


def crises(valid: list[tuple[bytes, bytes]], *, people: int, seed: int) -> list[tuple[bytes, bytes]]:
    """The stream with a PHQ-9 item 9 answer (a safety rule: an urgent alert) from `people` of its subjects."""
    rng = random.Random(seed)
    consents = [orjson.loads(raw) for _, raw in valid if b"consent" in raw]
    consents = [e for e in consents if e["type"] == "org.carewatch.consent.v1"]
    out = list(valid)
    for chosen in rng.sample(consents, min(people, len(consents))):
        when = datetime.fromisoformat(chosen["time"].replace("Z", "+00:00")) + timedelta(days=rng.randrange(2, 20))
        survey = event("survey", subject=chosen["subject"], source=chosen["source"], when=when,
                       event_id=f"crisis-{chosen['subject']}", instrument="phq9", items=[1, 1, 2, 1, 1, 1, 1, 1, 2])
        out.insert(rng.randrange(out.index((chosen["subject"].encode(), orjson.dumps(chosen))) + 1, len(out) + 1),
                   (chosen["subject"].encode(), orjson.dumps(survey)))
    return out


def poisoned(valid: list[tuple[bytes, bytes]], *, share: float, seed: int) -> list[tuple[bytes, bytes]]:
    """The valid stream with poison mixed in: every kind of broken record, far-past events, duplicates, replays."""
    rng = random.Random(seed)
    out: list[tuple[bytes, bytes]] = []
    for key, raw in valid:
        out.append((key, raw))
        if rng.random() >= share:
            continue
        roll = rng.random()
        event = orjson.loads(raw)
        if roll < 0.6:
            bad, _ = broken(rng, event)
            out.append((key, bad))
        elif roll < 0.75:  # far past: valid, two years old, a new id
            event["id"] = f"{event['id']}-past"
            event["time"] = (datetime.now(timezone.utc) - timedelta(days=730)).isoformat().replace("+00:00", "Z")
            out.append((key, orjson.dumps(event)))
        elif roll < 0.9:  # a duplicate: the same record again at once
            out.append((key, raw))
        else:  # a replay of a recent record of the stream
            out.append(out[max(0, len(out) - rng.randrange(1, 10))])
    return out


def ledger(records: list[tuple[bytes, bytes]], *, settings: Settings | None = None) -> Ledger:
    """What each record must become, by the offline code path in send order."""
    pipeline = Pipeline.from_settings(settings or Settings())
    states = DictStates()
    out = Ledger(records=records)
    offline = []
    for key, raw in records:
        code = _future(raw)
        if code is not None:  # the worker checks event time against its clock; the replay runs on stream time
            out.dead[raw] = code
        else:
            offline.append(raw)
    for start in range(0, len(offline), 256):
        chunk = offline[start:start + 256]
        for raw, result in zip(chunk, pipeline.handle_batch([(r, None) for r in chunk], states=states, now=None,
                                                             check_future=False)):
            if result.outcome is Outcome.PROCESSED:
                out.scored.add((result.event.source, result.event.id))
                out.alerts |= {(a.alert_id, a.severity) for a in result.alerts}
                if result.event.type == "org.carewatch.text.v1":
                    out.texts.add(result.event.data["text"])
            elif result.outcome is Outcome.DEAD_LETTERED:
                out.dead[raw] = result.error.code
            else:
                out.dropped[result.outcome.value] += 1
    return out


def _future(raw: bytes) -> str | None:
    try:
        event = orjson.loads(raw)
        when = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    except Exception:
        return None
    return "time_in_future" if when > datetime.now(timezone.utc) + timedelta(hours=1) else None


def reconcile(topics, sent: Ledger) -> Reconciliation:
    risk = {(v["source"], v["event_id"]) for v in (orjson.loads(r.value) for r in topics.read_all(RISK))}
    dead: dict[bytes, str] = {}
    for record in topics.read_all(DLQ):
        headers = {k: v for k, v in record.headers or ()}
        dead[record.value] = headers.get("carewatch-error-code", b"").decode()
    alerts = [orjson.loads(r.value) for r in topics.read_all(ALERTS)]
    got = {(a["alert_id"], a["severity"]) for a in alerts}
    lost = len(sent.scored - risk) + sum(1 for raw in sent.dead if raw not in dead)
    wrong = sum(1 for raw, code in sent.dead.items() if raw in dead and dead[raw] != code)
    return Reconciliation(events=len(sent.records), lost=lost, wrong_code=wrong, alerts=len(got),
                          duplicated_alerts=len(alerts) - len(got), missing_alerts=sent.alerts - got,
                          extra_alerts=got - sent.alerts)
