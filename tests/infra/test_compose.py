"""docker-compose.yml, checked without a Docker engine: against the Compose specification's JSON schema
(compose_spec.json, from docker-compose 1.29.2 on PyPI, Apache-2.0) and against the repo's own files."""

from __future__ import annotations

import json
import re
import tomllib
import shutil
import subprocess
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_compose_file_follows_the_compose_specification():
    schema = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
    data = compose()
    data.pop("name", None)  # newer than this schema; a plain string in today's specification
    jsonschema.Draft201909Validator(schema).validate({k: v for k, v in data.items() if not k.startswith("x-")})


def test_every_service_needed_is_there_and_mounts_files_that_exist():
    services = compose()["services"]
    assert {"kafka", "topics", "worker", "gateway", "simulator", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repo"
    assert (ROOT / "Dockerfile").exists()
    assert "prometheus-compose.yml" in " ".join(services["prometheus"]["command"])


def test_the_compose_prometheus_config_passes_promtool():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make setup` installs Debian's prometheus package"
    done = subprocess.run([promtool, "check", "config", "prometheus-compose.yml"], cwd=ROOT / "infra" / "prometheus",
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_installs_from_the_lock_and_copies_every_package():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip install .*-c requirements\.lock", text)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert packages  # every package the project installs is in the image
    for package in (p.rstrip("*") for p in packages):
        assert f"COPY {package} ./{package}" in text
