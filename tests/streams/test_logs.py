"""Logs: JSON lines from worker and gateway, and never an event's text, a secret or a token, even at debug."""

from __future__ import annotations

import base64
import hashlib

import httpx
import orjson
import pytest

from tests.factory import event
from tests.processes import GatewayProcess, free_port, wait_for
from tests.receivers import HttpReceiver

pytestmark = pytest.mark.kafka

SECRET = "whsec_" + base64.b64encode(b"never in a log line, ever").decode()
TEAM_TOKEN = "team-token-never-logged-7731"
APP_TOKEN = "app-token-never-logged-5519"
CANARIES = ["zebra lantern 4471 quietly", "orchid tunnel 9902 softly", "I want to kill myself tonight maple 3310"]


def test_no_text_secret_or_token_reaches_the_logs_and_every_line_is_json(worker_factory, topics, tmp_path):
    hook = HttpReceiver()
    hook.statuses.extend([503, 400])  # a retry, then a rejection: the delivery paths log
    worker = worker_factory(args=("--loglevel", "debug"), config={
        "care_teams": {"team-north": {"tokens_sha256": [hashlib.sha256(TEAM_TOKEN.encode()).hexdigest()],
                                      "subjects": ["p-*"]}},
        "channels": {"hook": {"type": "webhook", "url": hook.url, "secret": SECRET, "timeout": 2}},
        "routes": [{"match": {}, "channels": ["hook"]}],
        "alerting": {"retry_base": 0.1, "retry_cap": 0.2},
    })
    gateway = GatewayProcess(root=worker.root, workdir=tmp_path / "gateway", bootstrap=topics.bootstrap,
                             prefix=topics.prefix, port=free_port(), clients={
                                 "app": {"token_sha256": hashlib.sha256(APP_TOKEN.encode()).hexdigest(),
                                         "sources": ["app://test/*"]}})
    gateway.start()
    try:
        records = [event("consent", subject="p-log01", event_id="log-c")]
        records += [event("text", subject="p-log01", event_id=f"log-{i}", text=text) for i, text in enumerate(CANARIES)]
        topics.send_raw([(b"p-log01", orjson.dumps(r)) for r in records])
        bad = event("text", subject="p-log01", event_id="log-bad", text=CANARIES[0], channel="fax")
        topics.send_raw([(b"p-log01", orjson.dumps(bad)), (b"p-log01", CANARIES[1].encode())])
        worker.wait_outcomes(len(records) + 2)
        posted = httpx.post(f"{gateway.url}/v1/events", headers={"Authorization": f"Bearer {APP_TOKEN}",
                                                                  "Content-Type": "application/cloudevents+json"},
                            content=orjson.dumps(event("text", subject="p-log02", event_id="log-gw",
                                                       text=CANARIES[2])))
        assert posted.status_code == 202
        rejected = httpx.post(f"{gateway.url}/v1/events", headers={"Authorization": f"Bearer {APP_TOKEN}",
                                                                    "Content-Type": "application/json"},
                              content=CANARIES[0].encode())
        assert rejected.status_code == 400
        wait_for(lambda: len(hook.requests) >= 2, timeout=60, what="the webhook's retry and rejection")
        aid = orjson.loads(hook.requests[0].body)["alert_id"]
        httpx.post(f"{worker.url}/v1/alerts/{aid}/ack", headers={"Authorization": f"Bearer {TEAM_TOKEN}"},
                   json={"note": CANARIES[1]}, timeout=15)
        httpx.post(f"{worker.url}/v1/alerts/{aid}/ack", headers={"Authorization": "Bearer wrong-token-9"}, timeout=15)
    finally:
        gateway.stop()
        worker.stop()
        hook.stop()
    for service, least in ((worker, 100), (gateway, 1)):  # the worker at debug level, the gateway at info
        text = service.log()
        assert text.count("\n") >= least, f"{service.command} logged almost nothing"
        for forbidden in [*CANARIES, *(c.split()[0] for c in CANARIES[:2]), SECRET, SECRET[6:], TEAM_TOKEN,
                          APP_TOKEN, "wrong-token-9"]:
            assert forbidden not in text, f"{service.command} logged {forbidden!r}"
        for line in filter(None, text.splitlines()):
            entry = orjson.loads(line)
            assert {"time", "level", "logger", "message"} <= set(entry), line
