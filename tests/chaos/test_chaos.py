"""Faults and abuse against the whole pipeline (real broker, worker processes, real HTTP receivers), reconciled.

Each scenario breaks something on purpose, then reconciles what the suite
sent against what the output topics and the webhook receiver hold
(tests/chaos/ledger.py): no event lost, the alert set of an undisturbed run,
every alert delivered (repeats under one `webhook-id`), no event text in any
log line, alert, metric or header. Each adds a row to the README's table.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import random
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest

from alerts.alert import is_safety
from alerts.routing import UNASSIGNED
from console.pages import UNREAD
from streams.topics import ALERTS, AUDIT, DLQ, EVENTS
from tests.chaos.ledger import cohort, crises, ledger, poisoned, reconcile
from tests.factory import event
from tests.processes import GatewayProcess, free_port, wait_for
from tests.receivers import HttpReceiver
from tests.visitor import Visitor

pytestmark = [pytest.mark.kafka, pytest.mark.chaos]

KAFKA = Path(__file__).resolve().parents[2] / "infra" / "kafka" / "kafka.sh"
SECRET = "whsec_" + base64.b64encode(b"chaos suite webhook secret").decode()


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def config(hook_url: str, *, timeout: float = 2) -> dict:
    return {
        "care_teams": {"team-north": {"tokens_sha256": [sha("north-token")], "subjects": ["p-*"]},
                       "team-south": {"tokens_sha256": [sha("south-token")], "subjects": ["s-*"]}},
        "channels": {"hook": {"type": "webhook", "url": f"{hook_url}/hook", "secret": SECRET, "timeout": timeout}},
        "routes": [{"match": {}, "channels": ["hook"]}],
        "alerting": {"retry_base": 0.2, "retry_cap": 2, "retry_attempts": 1000, "retry_budget": 3600},
    }


def publish(topics, records) -> None:
    for start in range(0, len(records), 5_000):
        topics.send_raw(records[start:start + 5_000])


def settle(topics, group: str, *, timeout: float = 600) -> None:
    wait_for(lambda: topics.lag(group, EVENTS) == 0, timeout=timeout, what="every event committed", interval=0.5)


def routed(topics) -> dict[str, str]:
    """Each alert's routing decision on the audit trail: notified, silenced or capped."""
    return {e["alert_id"]: e["outcome"] for e in (orjson.loads(r.value) for r in topics.read_all(AUDIT))
            if e.get("action") == "route"}


def delivered(hook: HttpReceiver, sent, topics, *, timeout: float = 180) -> float:
    """Wait until every alert's first notice was taken (but muted ones); return how long. Repeats keep their id.

    Every alert's routing decision must be on the audit trail, whatever broke."""
    started = time.monotonic()
    try:
        decisions = wait_for(lambda: (d := routed(topics)).keys() >= {a for a, _ in sent.alerts} and d, timeout=60,
                             what="every alert's routing decision on the audit trail", interval=0.5)
    except AssertionError as timed_out:  # say which alerts, and where they are on carewatch.alerts
        missing = {a for a, _ in sent.alerts} - routed(topics).keys()
        where = sorted((r.partition, r.offset) for r in topics.read_all(ALERTS)
                       if orjson.loads(r.value)["alert_id"] in missing)
        raise AssertionError(f"{timed_out}: {len(missing)} without one, at (partition, offset) {where}") from None
    quiet = {alert_id for alert_id, outcome in decisions.items() if outcome in ("silenced", "capped")}
    assert not {a for a, severity in sent.alerts if a in quiet and severity == "critical"}, "a critical alert muted"
    due = {f"{alert_id}.fire" for alert_id, _ in sent.alerts if alert_id not in quiet}
    wait_for(lambda: due <= {r.headers["webhook-id"] for r in hook.received()}, timeout=timeout,
             what=f"all {len(due)} alerts at the webhook", interval=0.5)
    for request in hook.requests:  # every attempt, taken or not, carries the id of what it delivers
        alert = orjson.loads(request.body)
        assert request.headers["webhook-id"].startswith(alert["alert_id"] + ".")
    return time.monotonic() - started


def no_text_anywhere(topics, sent, *, logs: list[str], metrics: list[str], hook: HttpReceiver) -> None:
    places = {"logs": "\n".join(logs), "metrics": "\n".join(metrics),
              "alerts": b"\n".join(r.value for r in topics.read_all(ALERTS)).decode(),
              "dlq headers": "\n".join(f"{k}={v!r}" for r in topics.read_all(DLQ) for k, v in r.headers or ()),
              "webhook": "\n".join(f"{r.headers}{r.body.decode()}" for r in hook.requests)}
    texts = [t for t in sent.texts if len(t) >= 12]
    assert texts, "the stream had no text events to look for"
    for where, content in places.items():
        for text in texts:
            assert text not in content, f"event text in {where}"


def test_poison_at_volume_every_event_ends_in_its_one_outcome(scale, topics, worker_factory, run_id, report):
    hook = HttpReceiver()
    valid = cohort(people=scale.people, days=scale.days, seed=5)
    records = poisoned(valid, share=0.2, seed=5)[:scale.poison_events]
    sent = ledger(records)
    assert len(sent.dead) > len(records) // 20 and sent.dropped["duplicate"] > 0
    publish(topics, records)
    worker = worker_factory(config=config(hook.url))
    started = time.monotonic()
    settle(topics, f"t{run_id}")
    drained = time.monotonic() - started
    result = reconcile(topics, sent)
    result.assert_clean()
    delivered(hook, sent, topics)
    no_text_anywhere(topics, sent, logs=[worker.log()], metrics=[httpx.get(f"{worker.url}/metrics").text], hook=hook)
    report(scenario=f"5. poison at volume ({len(sent.dead):,} bad records, far-past, duplicates, replays)",
           events=result.events, lost=result.lost, duplicated_alerts=result.duplicated_alerts, alerts=result.alerts,
           recover=f"drained in {drained:.0f} s")
    hook.stop()


def test_sigkills_at_random_moments_lose_nothing(scale, topics, worker_factory, run_id, tmp_path, report):
    hook = HttpReceiver()
    records = crises(cohort(people=scale.crowd, days=scale.days, seed=11), people=10, seed=11)
    sent = ledger(records)
    publish(topics, records)
    group = f"t{run_id}"
    rng = random.Random(11)
    worker = worker_factory(name="w0", config=config(hook.url), data_dir=tmp_path / "store")
    recoveries = []
    for number in range(1, scale.kills + 1):
        # a random moment: after this process has handled between 1/14 and 1/8 of the stream
        moment = rng.randrange(len(records) // 14, len(records) // 8)
        wait_for(lambda: sum(worker.outcomes().values()) >= moment or topics.lag(group, EVENTS) == 0, timeout=300,
                 what=f"{moment} events handled", interval=0.1)
        worker.kill()  # at once: asking the broker first let a fast worker run on for a second or more
        left = topics.lag(group, EVENTS)
        assert left > 0, "the stream ended before the kill: make it longer"
        # every other restart on an empty store: state comes back from the changelog alone
        store = tmp_path / ("store" if number % 2 else f"empty{number}")
        restarted = time.monotonic()
        worker = worker_factory(name=f"w{number}", config=config(hook.url), data_dir=store)
        # progress: events handled by the new process (commits come only every few seconds)
        wait_for(lambda: sum(worker.outcomes().values()) > 0, timeout=300, what="progress after a restart",
                 interval=0.1)
        recoveries.append(time.monotonic() - restarted)
    settle(topics, group)
    result = reconcile(topics, sent)
    result.assert_clean()
    delivered(hook, sent, topics)
    no_text_anywhere(topics, sent, logs=[worker.log()], metrics=[httpx.get(f"{worker.url}/metrics").text], hook=hook)
    report(scenario=f"1. worker SIGKILLed {scale.kills} times at random moments, restarted (every other time on an "
                    "empty store)",
           events=result.events, lost=result.lost, duplicated_alerts=result.duplicated_alerts, alerts=result.alerts,
           recover=f"median {sorted(recoveries)[len(recoveries) // 2]:.0f} s, max {max(recoveries):.0f} s "
                   "(restart to progress)")
    hook.stop()


def test_a_channel_failing_then_refusing_then_too_slow_loses_no_alert(scale, topics, worker_factory, run_id, report):
    hook = HttpReceiver()
    records = crises(cohort(people=scale.people, days=scale.days, seed=23), people=8, seed=23)
    sent = ledger(records)
    assert sent.alerts
    hook.failing = 503
    worker = worker_factory(config=config(hook.url, timeout=1))
    publish(topics, records)
    wait_for(lambda: len(hook.requests) >= 3, timeout=120, what="deliveries failing with 503")
    time.sleep(scale.outage)  # the outage itself: its length is the scenario, not a wait for a condition
    hook.stop()  # refused connections
    time.sleep(scale.outage)
    hook.failing, hook.delay = None, 1.5  # answers past the channel's 1 s timeout
    hook.start()
    time.sleep(scale.outage)
    attempts_in_outage = len(hook.requests)
    hook.delay = 0
    recover = delivered(hook, sent, topics)
    settle(topics, f"t{run_id}")
    result = reconcile(topics, sent)
    result.assert_clean()
    retried = [wid for wid in {r.headers["webhook-id"] for r in hook.requests}
               if sum(r.headers["webhook-id"] == wid for r in hook.requests) > 1]
    assert retried, "no delivery was retried through the outage"
    no_text_anywhere(topics, sent, logs=[worker.log()], metrics=[httpx.get(f"{worker.url}/metrics").text], hook=hook)
    report(scenario=f"3. webhook down {3 * scale.outage:.0f} s: 503, refused, then slower than its timeout "
                    f"({attempts_in_outage} failed attempts)",
           events=result.events, lost=result.lost, duplicated_alerts=result.duplicated_alerts, alerts=result.alerts,
           recover=f"every alert delivered {recover:.0f} s after the endpoint came back")
    hook.stop()


def test_two_workers_one_killed_the_other_takes_over(scale, topics, worker_factory, run_id, report):
    hook = HttpReceiver()
    records = crises(cohort(people=scale.crowd, days=scale.days, seed=31), people=10, seed=31)
    sent = ledger(records)
    one = worker_factory(name="one", config=config(hook.url))
    two = worker_factory(name="two", config=config(hook.url))
    wait_for(lambda: one.assigned() and two.assigned() and len(one.assigned() | two.assigned()) == 12,
             timeout=120, what="both workers to share the partitions")
    publish(topics, records)
    group = f"t{run_id}"
    wait_for(lambda: topics.lag(group, EVENTS) <= 0.6 * len(records), timeout=300, what="40% of the stream")
    one.kill()
    killed = time.monotonic()
    wait_for(lambda: len(two.assigned()) == 12, timeout=120, what="the survivor to take every partition")
    recover = time.monotonic() - killed
    settle(topics, group)
    result = reconcile(topics, sent)
    result.assert_clean()
    delivered(hook, sent, topics)
    no_text_anywhere(topics, sent, logs=[one.log(), two.log()], metrics=[httpx.get(f"{two.url}/metrics").text],
                     hook=hook)
    report(scenario="4. two workers, one SIGKILLed: rebalance, its state moves to the other",
           events=result.events, lost=result.lost, duplicated_alerts=result.duplicated_alerts, alerts=result.alerts,
           recover=f"{recover:.0f} s until the survivor held every partition")
    hook.stop()


def test_abuse_of_the_http_surfaces_gets_the_contracts_answers(topics, worker_factory, tmp_path, report):
    hook = HttpReceiver()
    worker = worker_factory(config=config(hook.url))
    gateway = GatewayProcess(root=worker.root, workdir=tmp_path / "gateway", bootstrap=topics.bootstrap,
                             prefix=topics.prefix, port=free_port(), clients={
                                 "app": {"token_sha256": sha("app-token"), "sources": ["app://chaos/*"]}})
    gateway.start()
    slow: list[socket.socket] = []
    try:
        consent = event("consent", subject="p-abuse", source="app://chaos/app", event_id="ab-c")
        crisis = event("survey", subject="p-abuse", source="app://chaos/app", event_id="ab-1",
                       instrument="phq9", items=[1, 1, 1, 1, 1, 1, 1, 1, 2])
        ok = httpx.post(f"{gateway.url}/v1/events", headers={"Authorization": "Bearer app-token"},
                        json=[consent, crisis], timeout=20)
        assert ok.status_code == 202
        alert_id = wait_for(lambda: hook.received(), timeout=60, what="the alert")[0].json()["alert_id"]
        # slow clients: connections that send half a request and hold it, on both servers
        for url in (gateway.url, worker.url):
            host, port = url.removeprefix("http://").split(":")
            for _ in range(20):
                client = socket.create_connection((host, int(port)))
                client.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
                slow.append(client)

        def gw(headers=None, body=b"[]", **kw):
            return httpx.post(f"{gateway.url}/v1/events", headers=headers or {}, content=body, timeout=20, **kw)

        def ack(token, alert=alert_id, body=None):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.post(f"{worker.url}/v1/alerts/{alert}/ack", headers=headers, content=body, timeout=20)

        app = {"Authorization": "Bearer app-token", "Content-Type": "application/json"}
        cases = [
            ("gateway: no token", lambda: gw({"Content-Type": "application/json"}), 401),
            ("gateway: wrong token", lambda: gw({"Authorization": "Bearer nope", "Content-Type": "application/json"}),
             401),
            ("gateway: a source the client may not use", lambda: gw(app, orjson.dumps(event(
                "consent", subject="p-abuse", source="app://other/app", event_id="ab-x"))), 202),
            ("gateway: oversize body", lambda: gw(app, b"[" + b" " * (6 * 1024 * 1024) + b"]"), 413),
            ("gateway: not JSON", lambda: gw(app, b"{nope"), 400),
            ("gateway: another media type", lambda: gw({**app, "Content-Type": "text/plain"}), 415),
            ("ack API: no token", lambda: ack(None), 401),
            ("ack API: wrong token", lambda: ack("nope"), 401),
            ("ack API: another team's token", lambda: ack("south-token"), 403),
            ("ack API: unknown alert", lambda: ack("north-token", alert="al-" + "0" * 40), 404),
            ("ack API: oversize body without a token", lambda: ack(None, body=b"x" * (2 * 1024 * 1024)), 401),
            ("ack API: bad body", lambda: ack("north-token", body=b"{nope"), 400),
            ("console: no session", lambda: httpx.get(f"{worker.url}/console/inbox/rows", timeout=20), 401),
            ("console: forged session", lambda: httpx.get(f"{worker.url}/console/inbox/rows", timeout=20, headers={
                "Cookie": "carewatch_session=eyJ0IjoidGVhbS1ub3J0aCJ9.forged"}), 401),
        ]
        answers = [(name, want, call().status_code) for name, call, want in cases]
        wrong = [a for a in answers if a[1] != a[2]]
        assert not wrong, wrong
        # the source check answers per event inside the 202
        assert "source" in gw(app, orjson.dumps(event("consent", subject="p-abuse", source="app://other/app",
                                                      event_id="ab-y"))).text
        # after all that, real work still goes through, and the alert is still the team's to take
        assert ack("north-token").status_code == 200
    finally:
        for client in slow:
            client.close()
        gateway.stop()
        hook.stop()
    report(scenario=f"6. HTTP abuse: {len(cases)} kinds of bad request and {len(slow)} slow clients held open",
           events=len(cases), lost=len(wrong), duplicated_alerts=0, alerts=1,
           recover="served throughout (every answer as the contract says)")


def test_the_broker_stopped_and_restarted_mid_run_loses_nothing(scale, topics, worker_factory, run_id, tmp_path,
                                                              report, request):
    if os.environ.get("CAREWATCH_TEST_BOOTSTRAP"):
        pytest.skip("the broker is not this suite's to stop")
    hook = HttpReceiver()
    records = crises(cohort(people=scale.crowd, days=scale.days, seed=41), people=10, seed=41)
    sent = ledger(records)
    publish(topics, records)
    group = f"t{run_id}"
    workers = [worker_factory(name="w0", config=config(hook.url), data_dir=tmp_path / "store")]

    def supervise() -> None:
        """What compose's `restart: unless-stopped` does: a worker that exited is started again."""
        if not workers[-1].alive():
            assert workers[-1].process.returncode == 70, workers[-1].log()[-3000:]
            workers.append(worker_factory(name=f"w{len(workers)}", config=config(hook.url),
                                          data_dir=tmp_path / "store"))

    gateway = GatewayProcess(root=workers[0].root, workdir=tmp_path / "gateway", bootstrap=topics.bootstrap,
                             prefix=topics.prefix, port=free_port(), extra={"gateway": {"publish_timeout": 1}},
                             clients={"app": {"token_sha256": sha("app-token"), "sources": ["*"]}})
    gateway.start()
    request.addfinalizer(gateway.stop)

    def post_again() -> httpx.Response:
        """The stream's first event again, through the gateway: a duplicate, which earns nothing."""
        return httpx.post(f"{gateway.url}/v1/events", content=records[0][1], timeout=20,
                          headers={"Authorization": "Bearer app-token", "Content-Type": "application/cloudevents+json"})

    assert post_again().status_code == 202
    wait_for(lambda: sum(workers[0].outcomes().values()) >= len(records) // 4, timeout=300,
             what="a quarter of the stream")
    assert topics.lag(group, EVENTS) > 0, "the stream ended before the broker stopped: make it longer"
    alert = wait_for(lambda: hook.received(), timeout=120, what="an alert before the outage")[0].json()
    token = {"team-north": "north-token", "team-south": "south-token"}.get(alert["care_team"], "north-token")
    # one a silence may mute (no safety rule raised it), of the nurse's team or of none
    mutable = wait_for(lambda: [a for r in hook.received() if not is_safety(a := r.json())
                                and a["care_team"] in (alert["care_team"], UNASSIGNED)],
                       timeout=120, what="an alert a silence may mute before the outage")[0]

    def acknowledge() -> httpx.Response:
        return httpx.post(f"{workers[-1].url}/v1/alerts/{alert['alert_id']}/ack", timeout=30,
                          headers={"Authorization": f"Bearer {token}"})

    nobody = "zz-nobody-*"  # a silence that mutes no one of the stream: the reconciliation stays as it is

    def silence() -> httpx.Response:
        return httpx.post(f"{workers[-1].url}/v1/silences", timeout=30, headers={"Authorization": "Bearer north-token"},
                          json={"subject": nobody, "duration": "1h", "comment": "made in the outage"})

    def timed(call) -> tuple[httpx.Response, float]:
        asked = time.monotonic()
        return call(), time.monotonic() - asked

    nurse = Visitor(workers[-1].url)
    assert nurse.sign_in(token).status_code == 303
    csrf = nurse.csrf()
    request.addfinalizer(nurse.client.close)
    stopped = time.monotonic()
    try:
        subprocess.run([KAFKA, "stop"], check=True, capture_output=True)
        stopped = time.monotonic()
        # the gateway answers within its publish_timeout, 503 and "send it again", rather than hang for 40 s
        refused = post_again()
        assert refused.status_code == 503 and refused.headers["Retry-After"], refused.text
        assert refused.json()["failed"] == 1 and refused.json()["results"][0]["status"] == "failed"
        answered = time.monotonic() - stopped
        assert answered < 5
        # an ack and a silence are answered within their 10 s wait, 503, rather than hang until the broker is back;
        # a refusal too, with its own answer (its audit entry goes once the broker is back); the console shows the
        # alert from the worker's books, and says the trend and timeline cannot be read now
        silencer = workers[-1]
        with ThreadPoolExecutor(4) as pool:
            acking, silencing = pool.submit(timed, acknowledge), pool.submit(timed, silence)
            refusing = pool.submit(timed, lambda: httpx.post(f"{silencer.url}/v1/alerts/{alert['alert_id']}/ack",
                                                             headers={"Authorization": "Bearer nope"}, timeout=30))
            showing = pool.submit(timed, lambda: nurse.request("GET", f"/console/alerts/{alert['alert_id']}"))
            (ack, waited), (muted, muting) = acking.result(), silencing.result()
            (unknown, refused_in), (page, shown_in) = refusing.result(), showing.result()
        # the console's silence, likewise: its page says it is not on the event log yet, rather than hang
        console_muted, console_muting = timed(lambda: nurse.request(
            "POST", f"/console/alerts/{mutable['alert_id']}/silence", timeout=30,
            data={"csrf": csrf, "note": "made in the outage", "duration": "1h"}))
        assert console_muted.status_code == 503 and console_muting < 15, (console_muted.status_code, console_muting)
        assert "Not silenced yet" in console_muted.text and "audit trail" in console_muted.text
        assert unknown.status_code == 401 and refused_in < 15, (unknown.status_code, refused_in)
        assert page.status_code == 200 and shown_in < 10, (page.status_code, shown_in)
        assert alert["alert_id"] in page.text and page.text.count(html.escape(UNREAD)) == 2
        assert ack.status_code == 503 and ack.headers["Retry-After"] and waited < 15, (ack.status_code, ack.text)
        assert muted.status_code == 503 and muted.headers["Retry-After"] and muting < 15, (muted.status_code,
                                                                                           muted.text)
        time.sleep(max(0.0, scale.outage - (time.monotonic() - stopped)))  # the outage itself
    finally:
        outage = time.monotonic() - stopped
        subprocess.run([KAFKA, "start"], check=True, capture_output=True)
    restarted = time.monotonic()
    left = topics.lag(group, EVENTS)
    wait_for(lambda: supervise() or topics.lag(group, EVENTS) < left or left == 0, timeout=300,
             what="progress after the broker came back", interval=0.5)
    recover = time.monotonic() - restarted
    wait_for(lambda: post_again().status_code == 202, timeout=120, what="the gateway taking events again")
    wait_for(lambda: supervise() or topics.lag(group, EVENTS) == 0, timeout=600, what="every event committed",
             interval=0.5)
    result = reconcile(topics, sent)
    result.assert_clean()
    delivered(hook, sent, topics)
    supervise()
    no_text_anywhere(topics, sent, logs=[w.log() for w in workers],
                     metrics=[httpx.get(f"{workers[-1].url}/metrics").text], hook=hook)
    # asked again, as the 503 said: the ack applies, and its update reaches the webhook
    def acknowledged() -> bool:
        try:
            return acknowledge().status_code == 200
        except httpx.HTTPError:  # a worker the supervisor is starting again
            return False

    wait_for(lambda: supervise() or acknowledged(), timeout=120, what="the ack, asked again")
    # the silence's sends went on, as the 503 said: it is in force once the broker has it, and audited; unless
    # the worker that took it exited meanwhile (the supervisor's restart): then it is asked again, as the 503 says
    def in_force() -> list[dict]:
        try:
            listed = httpx.get(f"{workers[-1].url}/v1/silences", headers={"Authorization": "Bearer north-token"})
        except httpx.HTTPError:  # a worker the supervisor is starting again
            return []
        return [s for s in listed.json()["silences"] if s["subject"] == nobody]

    if silencer is workers[-1]:
        made = wait_for(lambda: supervise() or in_force(), timeout=60, what="the silence made in the outage")
    else:
        made = in_force() or [silence().json()]
    assert any(orjson.loads(r.value).get("silence") == made[0]["id"] for r in topics.read_all(AUDIT))
    wait_for(lambda: any(r.headers["webhook-id"] == f"{alert['alert_id']}.acknowledged" for r in hook.received()),
             timeout=120, what="the acknowledged update")
    report(scenario=f"2. the broker stopped for {outage:.0f} s mid-run and started again "
                    f"({len(workers) - 1} worker restart(s) by the supervisor)",
           events=result.events, lost=result.lost, duplicated_alerts=result.duplicated_alerts, alerts=result.alerts,
           recover=f"{recover:.0f} s from the broker's start to progress; meanwhile the gateway answered 503 in "
                   f"{answered:.1f} s, the ack API in {waited:.1f} s and the silences API in {muting:.1f} s")
    hook.stop()
