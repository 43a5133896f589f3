"""A real HTTP server on loopback, in a thread, for tests that drive worker processes synchronously."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    #: answered only after `delay`: the sender had given up waiting (not taken)
    slow: bool = False

    def json(self):
        return orjson.loads(self.body)


class HttpReceiver:
    """Records every POST; answers with scripted statuses (default 200); can go down and come back on its port."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Request] = []
        self.statuses: deque[int] = deque()
        self.failing: int | None = None  # answer this status to everything while set
        self.delay = 0.0  # seconds to wait before answering (past a sender's timeout: a slow endpoint)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = port
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                delay = receiver.delay
                if delay:
                    time.sleep(delay)
                with receiver._lock:
                    status = receiver.failing or (receiver.statuses.popleft() if receiver.statuses else 200)
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append(Request(self.path, headers, body, status, slow=bool(delay)))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender hung up first (it timed out)
                    pass

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the port: connections are refused until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self, status: int = 200) -> list[Request]:
        """Requests answered with `status` (by default: the ones that were taken)."""
        with self._lock:
            return [r for r in self.requests if r.status == status and not r.slow]
