"""Everything after an alert exists: routing, channels, escalation, the ack API.

Pure asyncio and HTTP/SMTP; knows nothing of Kafka (DESIGN.md).
"""

from .alert import Alert, Reason, alert_id
from .config import AlertingConfig
from .routing import UNASSIGNED, owner

__all__ = ["Alert", "AlertingConfig", "Reason", "UNASSIGNED", "alert_id", "owner"]
