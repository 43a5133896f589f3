"""The console channel: one log line per alert, with the facts and the link to its page, for the demo."""

from __future__ import annotations

import logging

from alerts.channels import build
from tests.alerts.conftest import alert, notice


async def test_one_line_per_alert_with_the_page_link(caplog):
    with caplog.at_level(logging.INFO, logger="carewatch.console"):
        await build("console", {"type": "console"}).send(notice(alert(), alert(alert_id="al-" + "2" * 40)))
    lines = [r.getMessage() for r in caplog.records if r.name == "carewatch.console"]
    assert len(lines) == 2
    assert lines[0].startswith("[alert] CRITICAL p-7f3a9c (team-north): C-SSRS screener item 5 answered yes")
    assert lines[0].endswith(f"open: {alert()['links']['page']}")
