"""Errors of the models package, classified by `retriable`."""

__all__ = ["ModelsError", "RegistryError", "ScoringError"]


class ModelsError(Exception):
    """Root of every error the models package raises on purpose."""

    retriable: bool = False


class RegistryError(ModelsError):
    """A model version is missing, altered, or does not match its manifest."""


class ScoringError(ModelsError):
    """A batch could not be scored (bad shape or type)."""
