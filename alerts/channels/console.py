"""The console channel, for the demo: one log line per alert (the process's log, JSON lines), no event text."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict

from .summary import headline, page

__all__ = ["Config", "ConsoleChannel"]

log = logging.getLogger("carewatch.console")

TYPE = "console"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsoleChannel:
    per_alert = False

    def __init__(self, *, name: str) -> None:
        self.name = name

    async def send(self, notice) -> None:
        for alert in notice.alerts:
            log.warning("[%s] %s · %s · open: %s", notice.kind, headline(alert), alert["alert_id"],
                        page(alert))

    async def close(self) -> None:
        return None


def build(name: str, config: Config) -> ConsoleChannel:
    return ConsoleChannel(name=name)
