"""Logs as JSON lines, with secrets and free text redacted before anything is written.

carewatch's own code never logs a record's content, only its kind and
error class. This is the second line: every line from every logger (faust,
aiokafka, aiohttp included) passes `redact`, which blanks channel secrets,
bearer tokens, passwords and keys, the free-text fields of events and of
human notes, and any bytes literal long enough to be a record.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson

__all__ = ["JsonFormatter", "config", "redact"]

_RULES = [
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
    (re.compile(r"glsa_[A-Za-z0-9_]+"), "glsa_[redacted]"),
    (re.compile(r"(?i)\bbearer\s+[^\s\"',}]+"), "Bearer [redacted]"),
    (re.compile(r"(?i)((?:password|passwd|secret|token|routing_key|authorization|api_key)[\"']?\s*[:=]\s*[\"']?)"
                r"[^\s\"',}]+"), r"\1[redacted]"),
    (re.compile(r"(?s)(\"(?:text|note|comment)\"\s*:\s*)\"(?:[^\"\\]|\\.)*\""), r'\1"[redacted]"'),
    (re.compile(r"(?s)\bb(['\"]).{24,}?(?<!\\)\1"), "b'[redacted]'"),
]


def redact(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (redacted), and the error's class if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["trace"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def config(level: str | int = "info") -> dict[str, Any]:
    """A logging.config.dictConfig for every carewatch process: JSON lines on standard output."""
    level = level.upper() if isinstance(level, str) else level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout",
                                "level": level}},
        "root": {"level": level, "handlers": ["stdout"]},
    }
