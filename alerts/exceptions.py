"""Errors of the alerts package, classified rather than branched on.

A delivery that fails raises one of these; `retriable` says whether trying
the same request again may work (a 503, a timeout, a 429) or never will
(a 400, a wrong token). The retry stage (alerts/delivery.py) decides from
that and from `retry_after`, never from the channel's own logic.
"""

from __future__ import annotations

__all__ = ["AlertsError", "DeliveryError", "Faulted", "Rejected", "RateLimited", "TimedOut", "Unavailable"]


class AlertsError(Exception):
    """Root of every error the alerts package raises on purpose."""

    retriable: bool = False


class DeliveryError(AlertsError):
    """A channel did not take a message. The text names the channel's answer, never the alert's content."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Unavailable(DeliveryError):
    """5xx, a refused or broken connection: the service may be back soon."""

    retriable = True


class TimedOut(DeliveryError):
    """No answer within the channel's timeout."""

    retriable = True


class RateLimited(DeliveryError):
    """429: try again, not before `retry_after` seconds when the service said so."""

    retriable = True


class Rejected(DeliveryError):
    """Any other 4xx, or a refused SMTP recipient: the same request will fail again."""


class Faulted(DeliveryError):
    """The channel raised something else while it built or sent the message: a bug, so the same try fails again.

    Final, as a rejection is: the route's fallback goes and the outcome is recorded, where the raise would have
    ended the delivery with nothing recorded and its notice pending for good.
    """
