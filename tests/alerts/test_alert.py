"""An alert read back from carewatch.alerts: the CONTRACT §2 shape, or an error that names the field."""

from __future__ import annotations

import pytest

from alerts.alert import checked
from tests.alerts.conftest import alert


@pytest.mark.parametrize(("change", "message"), [
    ({"alert_id": "al 1"}, "alert_id: expected 8 to 128 of A-Z a-z 0-9 _ -"),
    ({"subject": "jane@example.org"}, "subject: expected a pseudonymous id of 3 to 64 of A-Z a-z 0-9 _ -"),
    ({"status": "open"}, "status: expected one of firing, acknowledged, resolved"),
    ({"care_team": ""}, "care_team: expected a care team's name"),
    ({"raised_at": 1764236400}, "raised_at: expected an RFC 3339 time"),
    ({"reasons": [{"code": "cssrs_q5_positive"}]}, "reasons: expected a list of {code, detail} with text"),
    ({"risk_score": "high"}, "risk_score: expected a number"),
    ({"evidence": "evt-1"}, "evidence: expected a list of event ids"),
    ({"model_versions": {"text": 1}}, "model_versions: expected an object of model names to versions"),
    ({"links": {"page": "http://x/"}}, "links: expected an object with the ack URL (and the console page's)"),
])
def test_an_alert_out_of_shape_is_refused_naming_the_field(change, message):
    with pytest.raises(ValueError) as caught:
        checked(alert(**change))
    assert str(caught.value) == message


def test_a_missing_field_is_named_and_fields_the_contract_does_not_name_are_left_out():
    with pytest.raises(ValueError, match="^severity: missing$"):
        checked({k: v for k, v in alert().items() if k != "severity"})
    assert checked(alert(note="text a person wrote")) == alert()
