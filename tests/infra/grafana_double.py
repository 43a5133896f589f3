"""An HTTP double of the part of Grafana's HTTP API that `carewatch grafana push` uses.

It follows Grafana's documented API (grafana.com/docs/grafana/latest/developers/http_api/):
bearer tokens; data sources by uid (GET, POST /api/datasources, PUT by uid);
folders (GET /api/folders/:uid, POST /api/folders); dashboards (GET
/api/dashboards/uid/:uid, POST /api/dashboards/db with overwrite, which bumps
`version`). It keeps what it is given and records every write.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class GrafanaDouble:
    def __init__(self, *, token: str) -> None:
        self.token = token
        self.datasources: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.writes: list[tuple[str, str]] = []
        self._ids = iter(range(1, 1_000_000))
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                if self.headers.get("Authorization") != f"Bearer {double.token}":
                    return self._answer(401, {"message": "Unauthorized"})
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, answer = double.handle(method, self.path, body)
                self._answer(status, answer)

            def do_GET(self):  # noqa: N802
                self._route("GET")

            def do_POST(self):  # noqa: N802
                self._route("POST")

            def do_PUT(self):  # noqa: N802
                self._route("PUT")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, method: str, path: str, body: dict | None) -> tuple[int, object]:
        if method != "GET":
            self.writes.append((method, path))
        if m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
            uid = m[1]
            if method == "GET":
                found = self.datasources.get(uid)
                return (200, found) if found else (404, {"message": "Data source not found"})
            if uid not in self.datasources:
                return 404, {"message": "Data source not found"}
            self.datasources[uid] = {**body, "id": self.datasources[uid]["id"], "uid": uid, "orgId": 1}
            return 200, {"datasource": self.datasources[uid], "id": self.datasources[uid]["id"],
                         "message": "Datasource updated", "name": body["name"]}
        if path == "/api/datasources" and method == "POST":
            if any(d["name"] == body["name"] for d in self.datasources.values()):
                return 409, {"message": "data source with the same name already exists"}
            stored = {**body, "id": next(self._ids), "orgId": 1, "basicAuth": False, "jsonData": {}}
            self.datasources[body["uid"]] = stored
            return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": body["name"]}
        if m := re.fullmatch(r"/api/folders/([\w-]+)", path):
            found = self.folders.get(m[1])
            return (200, found) if found else (404, {"message": "folder not found", "status": "not-found"})
        if path == "/api/folders" and method == "POST":
            if body["uid"] in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            self.folders[body["uid"]] = {"id": next(self._ids), "uid": body["uid"], "title": body["title"], "version": 1}
            return 200, self.folders[body["uid"]]
        if m := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
            found = self.dashboards.get(m[1])
            return (200, found) if found else (404, {"message": "Dashboard not found"})
        if path == "/api/dashboards/db" and method == "POST":
            dashboard = body["dashboard"]
            previous = self.dashboards.get(dashboard["uid"])
            if previous and not body.get("overwrite"):
                return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
            version = previous["dashboard"]["version"] + 1 if previous else 1
            ident = previous["dashboard"]["id"] if previous else next(self._ids)
            self.dashboards[dashboard["uid"]] = {
                "dashboard": {**dashboard, "id": ident, "version": version},
                "meta": {"folderUid": body.get("folderUid", ""), "slug": dashboard["uid"]},
            }
            return 200, {"id": ident, "uid": dashboard["uid"], "status": "success", "version": version,
                         "url": f"/d/{dashboard['uid']}"}
        return 404, {"message": "Not found"}
