"""The HTTP ingest gateway against the real broker: every answer of its contract."""

from __future__ import annotations

import hashlib

import httpx
import orjson
import pytest

from streams.config import load
from streams.gateway import Gateway
from streams.topics import EVENTS
from tests.factory import event
from tests.processes import free_port

pytestmark = pytest.mark.kafka

TOKEN = "phone-app-token"
OTHER = "watch-app-token"


@pytest.fixture
async def gateway(topics):
    port = free_port()
    settings = load(environ={
        "CAREWATCH_KAFKA__BOOTSTRAP_SERVERS": topics.bootstrap,
        "CAREWATCH_KAFKA__TOPIC_PREFIX": topics.prefix,
        "CAREWATCH_GATEWAY__PORT": str(port),
        "CAREWATCH_GATEWAY__MAX_BODY_BYTES": "65536",
        "CAREWATCH_GATEWAY__MAX_EVENTS": "5",
        "CAREWATCH_GATEWAY__CLIENTS": orjson.dumps({
            "phone": {"token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "sources": ["app://journal/*"]},
            "watch": {"token_sha256": hashlib.sha256(OTHER.encode()).hexdigest(), "sources": ["device://watch/*"]},
        }).decode(),
    })
    async with Gateway(settings=settings):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


SINGLE = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


async def test_one_event_is_published_keyed_by_subject(gateway, topics):
    e = event("text", subject="p-gw001", source="app://journal/ios", event_id="gw-one")
    response = await gateway.post("/v1/events", content=orjson.dumps(e), headers=auth() | SINGLE)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "rejected": 0, "failed": 0,
                               "results": [{"index": 0, "id": "gw-one", "status": "accepted"}]}
    [record] = topics.read_all(EVENTS)
    assert record.key == b"p-gw001"
    assert orjson.loads(record.value) == e
    assert dict(record.headers)["content-type"] == b"application/cloudevents+json"


async def test_a_batch_gets_one_result_per_event_in_order(gateway, topics):
    good = event("survey", subject="p-gw002", source="app://journal/android", event_id="gw-b1")
    bad = event("survey", subject="p-gw002", source="app://journal/android", instrument="phq9", items=[0] * 8 + [4])
    foreign = event("wearable", subject="p-gw002", source="device://watch/1")
    response = await gateway.post("/v1/events", content=orjson.dumps([good, bad, foreign]), headers=auth() | BATCH)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert body["results"][0] == {"index": 0, "id": "gw-b1", "status": "accepted"}
    assert body["results"][1] == {"index": 1, "status": "rejected", "code": "invalid_data_field",
                                  "error": "data.items[8]: expected an integer 0-3, got 4"}
    assert body["results"][2]["code"] == "source_not_allowed"
    assert [orjson.loads(r.value)["id"] for r in topics.read_all(EVENTS)] == ["gw-b1"]


async def test_plain_json_takes_an_object_or_an_array(gateway):
    e = event("text", source="app://journal/web")
    for body in (e, [e]):
        response = await gateway.post("/v1/events", content=orjson.dumps(body),
                                      headers=auth() | {"Content-Type": "application/json"})
        assert response.status_code == 202


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer"}])
async def test_401_without_a_valid_token(gateway, headers):
    response = await gateway.post("/v1/events", content=b"{}", headers=headers | SINGLE)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Content-Type"].startswith("application/problem+json")


async def test_400_for_a_body_that_is_not_json_or_not_events(gateway):
    response = await gateway.post("/v1/events", content=b'{"id": ', headers=auth() | SINGLE)
    assert response.status_code == 400
    assert response.json()["detail"] == "body: not valid JSON (line 1, column 8)"
    response = await gateway.post("/v1/events", content=b'{"id": 1}', headers=auth() | BATCH)
    assert response.status_code == 400
    assert response.json()["detail"] == "body: application/cloudevents-batch+json expects a JSON array of events"
    response = await gateway.post("/v1/events", content=b'"hello"', headers=auth() | {"Content-Type": "application/json"})
    assert response.status_code == 400


async def test_413_over_the_size_or_count_limit(gateway):
    response = await gateway.post("/v1/events", content=b"[" + b" " * 70_000 + b"]", headers=auth() | BATCH)
    assert response.status_code == 413
    six = [event("survey", source="app://journal/x", instrument="mood", score=1) for _ in range(6)]
    response = await gateway.post("/v1/events", content=orjson.dumps(six), headers=auth() | BATCH)
    assert response.status_code == 413
    assert response.json()["detail"] == "body: 6 events is over the limit of 5 per request"


async def test_415_for_another_media_type(gateway):
    response = await gateway.post("/v1/events", content=b"{}", headers=auth() | {"Content-Type": "text/plain"})
    assert response.status_code == 415


async def test_requests_are_counted_by_status(gateway):
    await gateway.post("/v1/events", content=b"{}", headers=SINGLE)
    text = (await gateway.get("/metrics")).text
    assert 'carewatch_gateway_requests_total{status="401"} 1.0' in text
    assert 'carewatch_gateway_requests_total{status="202"} 0.0' in text
