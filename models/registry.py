"""The model registry: one folder per model version, a file and its manifest.

`models/registry/<name>@<version>/manifest.json` is the model card: what the
model is, its file's sha256, its inputs and outputs, its features and
thresholds, the (synthetic) data it was trained on, its held-out metrics,
its intended use and limitations, and the statement "not clinically
validated". Loading checks the hash, so a file that changed since its card
was written is refused with a message that says so.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import RegistryError

__all__ = ["DEFAULT_ROOT", "Card", "Registry"]

DEFAULT_ROOT = Path(__file__).resolve().parent / "registry"
REQUIRED = ("name", "version", "kind", "file", "sha256", "training", "metrics", "intended_use", "limitations",
            "clinical_validation")
_FOLDER = re.compile(r"(?P<name>[a-z0-9-]+)@(?P<version>\d+)")


@dataclass(frozen=True, slots=True)
class Card:
    """A manifest, read and checked; `path` is the model file, hash verified."""

    manifest: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> int:
        return self.manifest["version"]

    @property
    def ref(self) -> str:
        """`name@version`, as alerts and risk records report it."""
        return f"{self.name}@{self.version}"

    @property
    def features(self) -> list[str]:
        return list(self.manifest.get("features") or [])

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.manifest.get("thresholds") or {})


class Registry:
    def __init__(self, *, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def versions(self, name: str) -> list[int]:
        found = []
        for folder in self.root.glob(f"{name}@*"):
            match = _FOLDER.fullmatch(folder.name)
            if match and match["name"] == name and (folder / "manifest.json").is_file():
                found.append(int(match["version"]))
        return sorted(found)

    def card(self, name: str, version: int | None = None) -> Card:
        """The card of a version (the newest by default), with its file's hash checked."""
        versions = self.versions(name)
        if not versions:
            raise RegistryError(f"model '{name}': no version in {self.root}")
        version = versions[-1] if version is None else version
        folder = self.root / f"{name}@{version}"
        if version not in versions:
            raise RegistryError(f"model '{name}': no version {version} (have {', '.join(map(str, versions))})")
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{name}@{version}: manifest.json cannot be read ({exc})") from None
        missing = [key for key in REQUIRED if key not in manifest]
        if missing:
            raise RegistryError(f"{name}@{version}: manifest.json lacks {', '.join(missing)}")
        if (manifest["name"], manifest["version"]) != (name, version):
            raise RegistryError(f"{name}@{version}: manifest.json describes {manifest['name']}@{manifest['version']}")
        if "not clinically validated" not in manifest["clinical_validation"].lower():
            raise RegistryError(f"{name}@{version}: the card must say it is not clinically validated")
        path = folder / manifest["file"]
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise RegistryError(f"{name}@{version}: {manifest['file']} cannot be read ({exc.strerror})") from None
        if digest != manifest["sha256"]:
            raise RegistryError(
                f"{name}@{version}: {manifest['file']} has sha256 {digest[:12]}…, the card says "
                f"{manifest['sha256'][:12]}…; the file changed after its card was written"
            )
        return Card(manifest=manifest, path=path)
