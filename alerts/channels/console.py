"""The console channel, for the demo: one line per alert on standard output, no event text."""

from __future__ import annotations

import sys

from pydantic import BaseModel, ConfigDict

from .summary import headline

__all__ = ["Config", "ConsoleChannel"]

TYPE = "console"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsoleChannel:
    per_alert = False

    def __init__(self, *, name: str) -> None:
        self.name = name

    async def send(self, notice) -> None:
        for alert in notice.alerts:
            print(f"[carewatch {notice.kind}] {headline(alert)} · ack: {alert['links']['ack']}", file=sys.stdout,
                  flush=True)

    async def close(self) -> None:
        return None


def build(name: str, config: Config) -> ConsoleChannel:
    return ConsoleChannel(name=name)
