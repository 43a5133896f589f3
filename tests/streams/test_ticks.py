"""The alerting agent's ticks: one at a time per person, and never held back for good."""

from __future__ import annotations

from streams.agents.ticks import Ticks


def test_a_tick_that_is_never_answered_is_sent_again_so_no_escalation_is_held_back_for_good():
    ticks = Ticks(patience=30)
    deadlines = {"p-due": 100.0, "p-later": 500.0}
    assert ticks.due(deadlines, now=100) == ["p-due"]
    assert ticks.due(deadlines, now=110) == []  # on its way: one at a time
    ticks.answered("p-due")
    assert ticks.due(deadlines, now=111) == ["p-due"]  # answered, and due still: the next goes at once
    # that one is dead-lettered, or answered by the worker that held the person in a rebalance
    assert ticks.due(deadlines, now=140) == []
    assert ticks.due(deadlines, now=141) == ["p-due"]
    ticks.clear()  # the worker's partitions changed
    assert ticks.due(deadlines, now=142) == ["p-due"]
    ticks.answered("p-due")
    deadlines["p-due"] = 600.0  # escalated: its next step is later
    assert ticks.due(deadlines, now=500) == ["p-later"]
    assert ticks.due({"p-gone": 501.0, "p-later": 500.0}, now=501) == ["p-gone"]
    # p-gone has nothing due any more (its case was taken): its tick is forgotten, p-later's is still on its way
    assert ticks.due({"p-later": 500.0}, now=502) == []
    assert ticks.due({"p-gone": 503.0, "p-later": 500.0}, now=503) == ["p-gone"]
