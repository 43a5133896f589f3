"""`carewatch grafana push`: the datasource, the folder and the dashboards, through Grafana's HTTP API.

Idempotent: each object is read first and written only when it differs, so
a second push changes nothing. Uses grafana-client (the maintained fork of
grafana-api). The token is read from an environment variable, never from
the command line.
"""

from __future__ import annotations

import logging
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from .dashboards import DATASOURCE_UID, FOLDER_UID, build

__all__ = ["push"]

log = logging.getLogger(__name__)

_VOLATILE = {"id", "version"}


def _missing(error: GrafanaClientError) -> bool:
    return getattr(error, "status_code", None) == 404


def push(*, url: str, token: str, prometheus_url: str) -> dict[str, str]:
    """Bring Grafana at `url` in line; returns what happened to each object (created, updated, unchanged)."""
    api = GrafanaApi.from_url(url, credential=token)
    done: dict[str, str] = {}
    wanted = {"name": "carewatch Prometheus", "uid": DATASOURCE_UID, "type": "prometheus", "access": "proxy",
              "url": prometheus_url, "isDefault": False}
    try:
        current = api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as error:
        if not _missing(error):
            raise
        api.datasource.create_datasource(wanted)
        done[f"datasource {DATASOURCE_UID}"] = "created"
    else:
        if any(current.get(key) != value for key, value in wanted.items()):
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, {**current, **wanted})
            done[f"datasource {DATASOURCE_UID}"] = "updated"
        else:
            done[f"datasource {DATASOURCE_UID}"] = "unchanged"
    try:
        api.folder.get_folder(FOLDER_UID)
        done[f"folder {FOLDER_UID}"] = "unchanged"
    except GrafanaClientError as error:
        if not _missing(error):
            raise
        api.folder.create_folder("carewatch", uid=FOLDER_UID)
        done[f"folder {FOLDER_UID}"] = "created"
    for body in build().values():
        uid = body["uid"]
        try:
            current: Any = api.dashboard.get_dashboard(uid)
        except GrafanaClientError as error:
            if not _missing(error):
                raise
            current = None
        if current is not None and _same(current["dashboard"], body) and current["meta"].get("folderUid") == FOLDER_UID:
            done[f"dashboard {uid}"] = "unchanged"
            continue
        api.dashboard.update_dashboard({"dashboard": body, "folderUid": FOLDER_UID, "overwrite": True,
                                        "message": "carewatch grafana push"})
        done[f"dashboard {uid}"] = "created" if current is None else "updated"
    return done


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return {k: v for k, v in current.items() if k not in _VOLATILE} == wanted
