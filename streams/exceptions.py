"""Errors of the streams package, classified rather than branched on.

Every error carries `retriable`: whether doing the same thing again may work
(a broker that is briefly away) or never will (a malformed event).
"""

__all__ = ["CarewatchError", "ConfigError", "InvalidEvent", "PipelineProcessError", "PublishError", "TopicsNotReady"]


class CarewatchError(Exception):
    """Root of every error carewatch raises on purpose."""

    retriable: bool = False


class ConfigError(CarewatchError):
    """The configuration file or an override is wrong; the message names the key."""


class InvalidEvent(CarewatchError):
    """An event breaks a rule of the contract (CONTRACT.md §1).

    `code` is stable and meant for machines (the `carewatch-error-code`
    header); `str(error)` names the field and the rule for a person and
    never repeats free text from the event.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field

    def detached(self) -> "InvalidEvent":
        """The same error without its traceback and context, to keep once caught. Kept with them, its frames hold
        what the catcher holds (a batch's results, a list of receipts), which holds the error: a cycle that only a
        full collection frees. In the pipeline's process that was a quarter of its time, in pauses of up to 240 ms."""
        return InvalidEvent(self.code, str(self), field=self.field)


class PipelineProcessError(CarewatchError):
    """The pipeline's own process ended, or could not decide a batch; the batch is handed over again.

    The message names the error's type only: one raised while deciding could quote an event.
    """

    retriable = True


class PublishError(CarewatchError):
    """The broker did not take an event that passed validation."""

    retriable = True


class TopicsNotReady(CarewatchError):
    """The broker did not show every topic with a leader for each partition in time."""

    retriable = True
