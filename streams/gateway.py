"""The HTTP ingest gateway, for apps that cannot speak Kafka (CONTRACT §4).

`POST /v1/events` takes one CloudEvent (`application/cloudevents+json`), a
batch (`application/cloudevents-batch+json`, a JSON array) or plain
`application/json` holding either. Each event is validated by the same
module as everywhere else; valid ones are published with acks=all and
idempotence; the answer is 202 with one result per event, in order.

Answers: 401 without a valid bearer token (tokens per client, stored as
SHA-256, each allowed a set of `source` patterns); 400 for a body that is
not JSON or not an event/array; 413 over `gateway.max_body_bytes` or
`gateway.max_events`; 415 for another media type; 503 with `Retry-After`
when the broker did not take every valid event within
`gateway.publish_timeout` (the results say which; resending is safe, the
worker drops repeats by `(source, id)`).
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import logging
import logging.config
import signal
import time
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from . import logs
from .config import GatewayClient, Settings
from .events import parse
from .exceptions import InvalidEvent
from .metrics import GatewayMetrics
from .topics import EVENTS, name

__all__ = ["Gateway", "serve"]

log = logging.getLogger(__name__)

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON = "application/json"


class Gateway:
    """The aiohttp application and its producer; `async with` starts and stops both."""

    def __init__(self, *, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self._settings = settings
        self._registry = registry if registry is not None else CollectorRegistry()
        self._metrics = GatewayMetrics(registry=self._registry)
        self._topic = name(settings, EVENTS)
        self._producer: AIOKafkaProducer | None = None
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=settings.gateway.max_body_bytes)
        self.app.router.add_post("/v1/events", self._post_events)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics_view)

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka.bootstrap_servers.split(","),
            client_id=f"{self._settings.kafka.client_id}-gateway",
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
        )
        await self._producer.start()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        gateway = self._settings.gateway
        await web.TCPSite(self._runner, gateway.host, gateway.port).start()
        log.info("gateway listening on http://%s:%d/v1/events", gateway.host, gateway.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        producer, self._producer = self._producer, None
        if runner is not None:
            await runner.cleanup()
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> "Gateway":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- views ----------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _metrics_view(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _post_events(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        response = await self._handle(request)
        self._metrics.requests.labels(str(response.status)).inc()
        if response.status in (202, 503):
            self._metrics.publish_seconds.observe(time.perf_counter() - started)
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        client = self._authenticate(request.headers.get("Authorization", ""))
        if client is None:
            return _problem(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        media = request.content_type.lower()
        if media not in (SINGLE, BATCH, JSON):
            return _problem(415, f"Content-Type: expected {SINGLE}, {BATCH} or {JSON}")
        limit = self._settings.gateway.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _problem(413, f"body: over the limit of {limit} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _problem(413, f"body: over the limit of {limit} bytes")
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _problem(400, f"body: not valid JSON (line {exc.lineno}, column {exc.colno})")
        if media == BATCH and not isinstance(decoded, list):
            return _problem(400, f"body: {BATCH} expects a JSON array of events")
        if media == SINGLE and not isinstance(decoded, dict):
            return _problem(400, f"body: {SINGLE} expects one JSON object")
        if not isinstance(decoded, (list, dict)):
            return _problem(400, "body: expected an event object or an array of events")
        items = decoded if isinstance(decoded, list) else [decoded]
        max_events = self._settings.gateway.max_events
        if len(items) > max_events:
            return _problem(413, f"body: {len(items)} events is over the limit of {max_events} per request")
        return await self._publish(items, client)

    async def _publish(self, items: list[Any], client: GatewayClient) -> web.Response:
        now = time.time()
        results: list[dict[str, Any]] = []
        valid: list[tuple[int, bytes, bytes]] = []  # (index, value, key)
        skew = self._settings.ingest.max_future_skew
        for index, item in enumerate(items):
            raw = orjson.dumps(item)
            try:
                event = parse(raw, now=now, max_future_skew=skew)
                if not any(fnmatch.fnmatchcase(event.source, pattern) for pattern in client.sources):
                    raise InvalidEvent(
                        "source_not_allowed", "source: this client's token may not publish events from this source",
                        field="source",
                    )
            except InvalidEvent as error:
                results.append({"index": index, "status": "rejected", "code": error.code, "error": str(error)})
                continue
            results.append({"index": index, "id": event.id, "status": "accepted"})
            valid.append((index, raw, event.subject.encode()))
        failed = 0
        for index, error in (await self._send(valid)).items():
            failed += 1
            results[index] = {"index": index, "id": results[index]["id"], "status": "failed",
                              "error": f"{error}; send it again"}
        accepted = sum(1 for r in results if r["status"] == "accepted")
        rejected = sum(1 for r in results if r["status"] == "rejected")
        for result, count in (("accepted", accepted), ("rejected", rejected), ("failed", failed)):
            self._metrics.events.labels(result).inc(count)
        body = {"accepted": accepted, "rejected": rejected, "failed": failed, "results": results}
        if failed:
            return web.json_response(body, status=503, headers={"Retry-After": "5"}, dumps=_dumps)
        return web.json_response(body, status=202, dumps=_dumps)

    async def _send(self, valid: list[tuple[int, bytes, bytes]]) -> dict[int, str]:
        """Publish in order, within `gateway.publish_timeout`: why each event the broker did not take, by index.

        An event that could not be handed to the producer fails the ones after it too, so that none of them
        overtakes it; one answered as failed may still reach the broker later, and sent again it is a duplicate,
        which the worker drops by `(source, id)`."""
        timeout = self._settings.gateway.publish_timeout
        late = f"the broker did not take the event within {timeout:g} s"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sent: list[tuple[int, asyncio.Future]] = []
        unsent = late
        try:
            async with asyncio.timeout_at(deadline):
                for index, raw, key in valid:
                    sent.append((index, await self._producer.send(
                        self._topic, value=raw, key=key, headers=[("content-type", SINGLE.encode())])))
        except TimeoutError:
            pass
        except KafkaError as exc:
            unsent = f"the broker did not take the event ({type(exc).__name__})"
        why = {index: unsent for index, _, _ in valid[len(sent):]}
        if sent:  # waited for, never cancelled: the producer settles each future itself
            await asyncio.wait([future for _, future in sent], timeout=max(0.0, deadline - loop.time()))
        for index, future in sent:
            if not future.done():
                why[index] = late
            elif future.cancelled() or future.exception() is not None:
                error = asyncio.CancelledError() if future.cancelled() else future.exception()
                if not isinstance(error, KafkaError):
                    log.error("publishing an event failed (%s)", type(error).__name__)
                why[index] = f"the broker did not take the event ({type(error).__name__})"
        return why

    def _authenticate(self, header: str) -> GatewayClient | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        found = None
        for client in self._settings.gateway.clients.values():
            if hmac.compare_digest(digest, client.token_sha256):  # every client compared: constant time
                found = client
        return found


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _problem(status: int, detail: str, *, headers: dict[str, str] | None = None) -> web.Response:
    """An RFC 9457 problem document."""
    return web.json_response(
        {"status": status, "detail": detail}, status=status, headers=headers, content_type="application/problem+json"
    )


def serve(settings: Settings) -> int:
    """Run the gateway until interrupted."""
    logging.config.dictConfig(logs.config("info"))

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        async with Gateway(settings=settings):
            await stopping.wait()

    asyncio.run(run())
    return 0
