"""Escalation: who is told again, and when, while an alert stays unacknowledged (CONTRACT §2).

A policy is a list of steps (wait, then notify channels: those named, or
the route's own), run once and then `repeat` more times (null: until a human
acknowledges). Without a policy on its route, an alert gets the default of
CONTRACT §2: the same channels again at each deadline, 5 minutes for
`critical`, 60 for `urgent`, none for `watch` (its digest is the notice).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import EscalationPolicy, Step

__all__ = ["DEADLINES", "Escalation", "default_policy", "next_step"]

DEADLINES = {"critical": 5 * 60.0, "urgent": 60 * 60.0}


#: built once: a model built for each alert routed was 1 to 2% of the worker's time in py-spy
_DEFAULTS = {severity: EscalationPolicy(steps=[Step(wait=deadline)]) for severity, deadline in DEADLINES.items()}


def default_policy(severity: str) -> EscalationPolicy | None:
    """The policy of an alert whose routes name none: its severity's deadline, if it has one."""
    return _DEFAULTS.get(severity)


@dataclass(frozen=True, slots=True)
class Escalation:
    """Step `number` (1-based): wait `wait` seconds after the previous notice, then notify `channels`."""

    number: int
    wait: float
    channels: tuple[str, ...]


def next_step(policy: EscalationPolicy | None, *, done: int, route_channels: list[str]) -> Escalation | None:
    """The escalation after `done` of them, or None when the policy has run out."""
    if policy is None:
        return None
    steps = policy.steps
    if policy.repeat is not None and done >= len(steps) * (policy.repeat + 1):
        return None
    step = steps[done % len(steps)]
    return Escalation(number=done + 1, wait=step.wait, channels=tuple(step.channels or route_channels))
