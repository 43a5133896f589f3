"""Everything after an alert exists: routing, channels, escalation, the ack API.

Pure asyncio and HTTP/SMTP; knows nothing of Kafka (DESIGN.md).
"""

from .config import AlertingConfig

__all__ = ["AlertingConfig"]
