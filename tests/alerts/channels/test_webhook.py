"""The generic webhook against a real HTTP server; signatures checked by our own reading of Standard Webhooks 1.0."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson
import pytest

from alerts.channels import build
from alerts.exceptions import Rejected
from tests.alerts.conftest import alert, notice

SECRET = "whsec_" + base64.b64encode(b"a 24 byte test secret!!!").decode()
OLD = "whsec_" + base64.b64encode(b"the secret being retired").decode()


def verify(secret: str, headers: dict[str, str], body: bytes, *, tolerance: int = 300) -> bool:
    """A receiver's check, written from the spec: any v1 signature over id.timestamp.body matches."""
    key = base64.b64decode(secret.split("_", 1)[1])
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > tolerance:
        return False
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest())
    for part in headers["webhook-signature"].split(" "):
        version, _, signature = part.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


async def test_body_is_the_contract_object_and_the_signature_verifies(receiver):
    channel = build("north-hook", {"type": "webhook", "url": f"{receiver.url}/hook", "secret": SECRET})
    sent = alert()
    await channel.send(notice(sent))
    await channel.close()
    (request,) = receiver.requests
    assert request.path == "/hook"
    assert orjson.loads(request.body) == sent
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["webhook-id"] == f"{sent['alert_id']}.fire"
    assert verify(SECRET, request.headers, request.body)
    assert not verify(OLD, request.headers, request.body)
    assert not verify(SECRET, request.headers, request.body.replace(b"critical", b"watch"))


async def test_rotation_signs_with_every_secret_so_either_receiver_key_verifies(receiver, monkeypatch):
    monkeypatch.setenv("NORTH_HOOK_SECRETS", f"{SECRET} {OLD}")
    channel = build("north-hook", {"type": "webhook", "url": receiver.url, "secret_env": "NORTH_HOOK_SECRETS"})
    await channel.send(notice())
    await channel.close()
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(SECRET, request.headers, request.body)
    assert verify(OLD, request.headers, request.body)


async def test_a_status_change_is_the_same_object_with_the_new_status(receiver):
    channel = build("north-hook", {"type": "webhook", "url": receiver.url, "secret": SECRET})
    await channel.send(notice(alert(status="acknowledged"), kind="update", step="acknowledged"))
    await channel.close()
    body = orjson.loads(receiver.requests[0].body)
    assert body == alert(status="acknowledged")
    assert receiver.requests[0].headers["webhook-id"].endswith(".acknowledged")


async def test_a_4xx_answer_is_a_rejection_not_to_retry(receiver):
    receiver.answer((410, {}, b"gone"))
    channel = build("north-hook", {"type": "webhook", "url": receiver.url, "secret": SECRET})
    with pytest.raises(Rejected) as caught:
        await channel.send(notice())
    await channel.close()
    assert caught.value.status == 410 and not caught.value.retriable
    assert "critical" not in str(caught.value) and "p-7f3a9c" not in str(caught.value)
