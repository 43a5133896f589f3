"""Silences made through the API, as the alerting agent's dispatcher gets them."""

from __future__ import annotations

import time
from types import SimpleNamespace

from alerts.dispatch import Dispatcher
from alerts.silences import Silence
from streams.agents.silences import Silences
from streams.config import Settings


def test_the_dispatcher_matches_alerts_against_the_silences_in_force_only():
    settings = Settings()
    alerting = SimpleNamespace(dispatcher=Dispatcher(config=settings, per_alert={}))
    silences = Silences(worker=SimpleNamespace(settings=settings), alerting=alerting, tokens=None)
    now = time.time()
    silences.made = {"sil-ended": Silence(id="sil-ended", until=now - 60, care_team="team-north"),
                     "sil-on": Silence(id="sil-on", until=now + 3600, care_team="team-north")}
    silences._apply()
    assert [s.id for s in alerting.dispatcher.silences] == ["sil-on"]
