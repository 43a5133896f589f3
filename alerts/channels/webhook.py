"""The generic webhook: the CONTRACT §2 object, one per request, signed per Standard Webhooks 1.0.

Headers `webhook-id` (the delivery id: alert id plus step, the same on every
retry), `webhook-timestamp` (unix seconds) and `webhook-signature`: `v1,`
and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the
base64-decoded part of each `whsec_` secret. Several secrets (rotation)
give several space-separated signatures; a receiver accepts any one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .http import Poster

__all__ = ["Config", "WebhookChannel", "sign"]

TYPE = "webhook"


def _key(secret: str) -> bytes:
    if not secret.startswith("whsec_"):
        raise ValueError("a secret starts with whsec_ followed by base64")
    try:
        return base64.b64decode(secret[len("whsec_"):], validate=True)
    except binascii.Error:
        raise ValueError("the part after whsec_ is not valid base64") from None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(pattern=r"^https?://")
    #: one secret, or several while rotating (each signs; receivers accept any)
    secret: str | list[str] | None = None
    #: the name of an environment variable holding the secret(s), space-separated
    secret_env: str | None = None
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("secret")
    @classmethod
    def _secrets_decode(cls, value: str | list[str] | None) -> str | list[str] | None:
        for secret in [value] if isinstance(value, str) else value or []:
            _key(secret)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "Config":
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of secret and secret_env")
        if self.secret_env is not None:
            value = os.environ.get(self.secret_env)
            if not value:
                raise ValueError(f"secret_env: environment variable {self.secret_env} is not set")
            for secret in value.split():
                _key(secret)
        return self

    def keys(self) -> list[bytes]:
        secrets = os.environ[self.secret_env].split() if self.secret_env else self.secret
        return [_key(s) for s in ([secrets] if isinstance(secrets, str) else secrets)]


def sign(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode() for key in keys)


class WebhookChannel:
    per_alert = True

    def __init__(self, *, name: str, config: Config) -> None:
        self.name = name
        self.config = config
        self._keys = config.keys()
        self._poster = Poster(channel=name, timeout=config.timeout)

    async def send(self, notice) -> None:
        (alert,) = notice.alerts  # one alert per request, always (CONTRACT §2)
        body = orjson.dumps(alert)
        timestamp = int(time.time())
        await self._poster.post(self.config.url, body, {
            "content-type": "application/json",
            "webhook-id": notice.delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._keys, notice.delivery_id, timestamp, body),
        })

    async def close(self) -> None:
        await self._poster.close()


def build(name: str, config: Config) -> WebhookChannel:
    return WebhookChannel(name=name, config=config)
