"""E-mail against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import ssl
import subprocess
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

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
    assert f"Open in carewatch: {alert()['links']['page']}" in body
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


@pytest.fixture
def tls_smtp(tmp_path):
    """A real SMTP server that insists on STARTTLS (a throwaway self-signed certificate) and on login."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    logins: list[tuple[str, bool]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"care", b"s3cret")
        logins.append((mechanism, ok))
        return AuthResult(success=ok)

    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True)
    controller.start()
    yield inbox, controller.port, cert, logins
    controller.stop()


async def test_starttls_with_login_against_a_server_that_requires_both(tls_smtp, monkeypatch):
    inbox, port, cert, logins = tls_smtp
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    channel = build("north-mail", config(port, starttls=True, username="care", password_env="SMTP_PASSWORD",
                                         ca_file=str(cert)))
    await channel.send(notice())
    assert len(inbox.messages) == 1 and logins and all(ok for _, ok in logins)
    with pytest.raises(Rejected):  # 530: the same server refuses a client that does not upgrade; final
        await build("north-mail", config(port)).send(notice())
