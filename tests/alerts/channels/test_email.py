"""E-mail against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
from email import policy

import pytest
from aiosmtpd.controller import Controller

from alerts.channels import build
from alerts.exceptions import Rejected, Unavailable
from tests.alerts.conftest import alert, notice
from tests.processes import free_port


class Inbox:
    def __init__(self, refuse: set[str] = frozenset()) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    inbox = Inbox(refuse={"nobody@clinic.example"})
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def config(port: int, **extra) -> dict:
    return {"type": "email", "host": "127.0.0.1", "port": port, "sender": "carewatch@clinic.example",
            "to": ["north-oncall@clinic.example", "lead@clinic.example"], "timeout": 5} | extra


async def test_one_plain_text_message_to_every_recipient_with_the_facts_and_the_ack_link(smtp):
    inbox, port = smtp
    channel = build("north-mail", config(port))
    await channel.send(notice())
    (sender, recipients, mail), = inbox.messages
    assert sender == "carewatch@clinic.example"
    assert recipients == ["north-oncall@clinic.example", "lead@clinic.example"]
    assert mail["Subject"] == "carewatch critical alert: p-7f3a9c (team-north)"
    body = mail.get_content()
    assert "Subject: p-7f3a9c" in body and "Care team: team-north" in body
    assert f"Acknowledge: {alert()['links']['ack']}" in body
    assert "Reasons: cssrs_q5_positive: C-SSRS screener item 5 answered yes" in body


async def test_a_digest_is_one_message(smtp):
    inbox, port = smtp
    watch = [alert(alert_id=f"al-{i:040d}", severity="watch", subject=f"p-{i:04d}") for i in range(4)]
    await build("north-mail", config(port)).send(notice(*watch, kind="digest"))
    (_, _, mail), = inbox.messages
    assert mail["Subject"] == "carewatch: 4 watch alerts for team-north"
    assert mail.get_content().count("Alert id: al-") == 4


async def test_a_refused_recipient_is_final_and_a_closed_port_is_retriable(smtp):
    _, port = smtp
    with pytest.raises(Rejected) as refused:
        await build("north-mail", config(port, to=["nobody@clinic.example"])).send(notice())
    assert not refused.value.retriable
    with pytest.raises(Unavailable):
        await build("north-mail", config(free_port())).send(notice())
