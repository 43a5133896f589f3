"""The registry refuses what does not match its card, with a message that says why."""

from __future__ import annotations

import json
import shutil

import pytest

from models.exceptions import RegistryError
from models.registry import DEFAULT_ROOT, Registry
from models.scoring import Model


@pytest.fixture
def copy(tmp_path):
    for name in ("text-risk@1", "deviation@1"):
        shutil.copytree(DEFAULT_ROOT / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("name", ["text-risk", "deviation", "crisis-lexicon"])
def test_every_shipped_card_is_complete_and_says_what_it_is(name):
    card = Registry().card(name)
    manifest = card.manifest
    assert manifest["training"]["synthetic"] is True
    assert "not clinically validated" in manifest["clinical_validation"].lower()
    assert manifest["intended_use"] and manifest["limitations"]
    assert card.ref == f"{name}@{card.version}"


def test_a_changed_file_is_refused(copy):
    (copy / "deviation@1" / "model.onnx").write_bytes(b"not the model")
    with pytest.raises(RegistryError, match=r"deviation@1: model.onnx has sha256 .*the file changed after its card"):
        Registry(root=copy).card("deviation")


def test_missing_model_and_version(copy):
    with pytest.raises(RegistryError, match="model 'nope': no version in"):
        Registry(root=copy).card("nope")
    with pytest.raises(RegistryError, match=r"model 'deviation': no version 7 \(have 1\)"):
        Registry(root=copy).card("deviation", 7)


def test_a_card_without_the_statement_is_refused(copy):
    path = copy / "deviation@1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["clinical_validation"] = "validated"
    path.write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="must say it is not clinically validated"):
        Registry(root=copy).card("deviation")


def test_a_signature_that_does_not_match_the_card_is_refused(copy):
    path = copy / "deviation@1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["inputs"][0]["name"] = "rows"
    path.write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match=r"deviation@1: the card says inputs \[\('rows'"):
        Model(Registry(root=copy).card("deviation"))
