"""The care-team console: web pages for people to see, acknowledge and resolve alerts.

Pure: sessions, words and HTML. The worker serves it (streams/agents/console.py)
and feeds it from its tables and topics; this package knows nothing of Kafka.
"""

from .session import Session, Sessions

__all__ = ["Session", "Sessions"]
