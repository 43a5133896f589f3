"""Detection: hysteresis, persistence, cool-down, rises, and event time."""

from __future__ import annotations

from streams.config import DetectionSettings
from streams.detection import DetectionState, fuse, step

H = 3600.0
SETTINGS = DetectionSettings(watch_high=0.5, watch_low=0.3, urgent_high=0.8, urgent_low=0.6, persistence_events=2,
                             persistence=0, cooldown=7 * 24 * H, max_event_age=48 * H)


def run(scores, settings=SETTINGS, state=None, start=0.0, every=H):
    state = state or DetectionState()
    return state, [step(state, risk=r, at=start + i * every, settings=settings).alert for i, r in enumerate(scores)]


def test_persistence_needs_consecutive_scores_above_the_mark():
    _, alerts = run([0.6, 0.1, 0.6, 0.1])
    assert alerts == [None] * 4
    _, alerts = run([0.6, 0.6])
    assert alerts == [None, "watch"]


def test_hysteresis_holds_between_the_marks_and_clears_below_the_low_one():
    state, alerts = run([0.6, 0.6, 0.4, 0.4, 0.2, 0.6, 0.6])
    assert alerts == [None, "watch", None, None, None, None, None]  # the second rise is inside the cool-down
    assert state.level == "watch"
    state, _ = run([0.6, 0.6, 0.2])
    assert state.level is None


def test_time_persistence_too():
    settings = SETTINGS.model_copy(update={"persistence": 12 * H})
    _, alerts = run([0.6] * 14, settings=settings)
    assert alerts.index("watch") == 12


def test_a_rise_in_severity_always_alerts_even_in_the_cool_down():
    _, alerts = run([0.6, 0.6, 0.9, 0.9])
    assert alerts == [None, "watch", None, "urgent"]


def test_cool_down_per_person_and_level_then_alerts_again():
    state, alerts = run([0.6, 0.6, 0.1, 0.6, 0.6])
    assert alerts == [None, "watch", None, None, None]
    _, later = run([0.1, 0.6, 0.6], state=state, start=8 * 24 * H)
    assert later == [None, None, "watch"]


def test_a_late_score_moves_nothing():
    state = DetectionState()
    step(state, risk=0.1, at=100 * H, settings=SETTINGS)
    late = [step(state, risk=0.95, at=10 * H + i, settings=SETTINGS) for i in range(3)]
    assert [s.late for s in late] == [True] * 3 and all(s.alert is None for s in late)
    assert state.above == {}


def test_fusion_is_a_noisy_or():
    assert fuse(0.0, 0.0, text_weight=0.5) == 0.0
    assert fuse(0.4, 0.0, text_weight=0.5) == 0.4
    assert abs(fuse(0.5, 0.5, text_weight=0.5) - (1 - 0.5 * 0.75)) < 1e-12


def test_state_round_trips():
    state, _ = run([0.6, 0.6, 0.9])
    assert DetectionState.from_list(state.to_list()) == state
