"""E-mail over SMTP: plain text, one message per notice (a digest is one message).

Options: `starttls` (upgrade a plain connection), `tls` (implicit TLS, as
on port 465), `username` with `password_env`. A 5xx answer (a refused
recipient, a bad sender) is a rejection; 4xx and broken connections are
retried.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..exceptions import Rejected, TimedOut, Unavailable
from .summary import lines, title

__all__ = ["Config", "EmailChannel", "message"]

TYPE = "email"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(pattern=r".+@.+")
    to: list[str] = Field(min_length=1)
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password_env: str | None = None
    #: a CA bundle to trust for the server's certificate (a private CA); the system's by default
    ca_file: str | None = None
    timeout: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        if self.starttls and self.tls:
            raise ValueError("starttls and tls exclude each other: starttls upgrades a plain connection")
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together")
        if self.password_env is not None and self.password_env not in os.environ:
            raise ValueError(f"password_env: environment variable {self.password_env} is not set")
        if self.ca_file is not None and not os.path.isfile(self.ca_file):
            raise ValueError(f"ca_file: no file at {self.ca_file}")
        return self


def message(notice, *, sender: str, to: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = title(notice.alerts, notice.kind)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(idstring=notice.delivery_id[:60], domain="carewatch")
    blocks = ["\n".join(f"{label}: {value}" for label, value in lines(alert)) for alert in notice.alerts]
    mail.set_content("\n\n".join(blocks) + "\n\n-- \ncarewatch: acknowledge with POST to the link above.\n")
    return mail


class EmailChannel:
    per_alert = False

    def __init__(self, *, name: str, config: Config) -> None:
        self.name = name
        self.config = config

    async def send(self, notice) -> None:
        c = self.config
        try:
            await aiosmtplib.send(
                message(notice, sender=c.sender, to=c.to), hostname=c.host, port=c.port, start_tls=c.starttls,
                use_tls=c.tls, username=c.username, password=os.environ[c.password_env] if c.password_env else None,
                timeout=c.timeout, tls_context=ssl.create_default_context(cafile=c.ca_file) if c.ca_file else None,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise Rejected(f"{self.name}: every recipient refused ({len(exc.recipients)})") from None
        except aiosmtplib.SMTPResponseException as exc:
            error = Rejected if 500 <= exc.code < 600 else Unavailable
            raise error(f"{self.name}: SMTP {exc.code}", status=exc.code) from None
        except (aiosmtplib.SMTPTimeoutError, asyncio.TimeoutError):
            raise TimedOut(f"{self.name}: no answer within {c.timeout:g} s") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise Unavailable(f"{self.name}: {type(exc).__name__}") from None

    async def close(self) -> None:
        return None


def build(name: str, config: Config) -> EmailChannel:
    return EmailChannel(name=name, config=config)
