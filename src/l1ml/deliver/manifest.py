"""A delivery's file list and its checks: `l1ml deliver --check PATH` and `l1ml deliver --list [MODEL]`.

Every file of a package but manifest.json itself is listed in the manifest with its SHA-256 and size; a check
recomputes them and names each changed, missing and extra file.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from l1ml.errors import L1mlError
from l1ml.runs import sha256_file

MANIFEST = "manifest.json"


def file_hashes(folder: Path) -> dict[str, dict]:
    return {str(p.relative_to(folder)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file() and str(p.relative_to(folder)) != MANIFEST}


@dataclass
class CheckResult:
    path: Path
    manifest: dict
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra)

    def status(self) -> str:
        if self.ok:
            return "ok"
        parts = [f"{len(v)} {k}" for k, v in (("changed", self.changed), ("missing", self.missing), ("extra", self.extra)) if v]
        return "DAMAGED: " + ", ".join(parts)

    def lines(self) -> list[str]:
        return ([f"changed: {p}" for p in self.changed] + [f"missing: {p}" for p in self.missing]
                + [f"extra: {p}" for p in self.extra])


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise L1mlError("not a delivery: no manifest.json", path=folder) from None
    except ValueError as exc:
        raise L1mlError(f"the manifest is not JSON ({exc})", path=path) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise L1mlError("the manifest lists no files", path=path, key="files")
    return manifest


def check_folder(folder: Path) -> CheckResult:
    folder = Path(folder)
    manifest = read_manifest(folder)
    listed = manifest["files"]
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    result = CheckResult(folder, manifest)
    result.missing = sorted(set(listed) - present)
    result.extra = sorted(present - set(listed))
    result.changed = sorted(rel for rel in set(listed) & present if sha256_file(folder / rel) != listed[rel].get("sha256"))
    return result


def check(path: str | Path) -> CheckResult:
    """Check a delivery folder, or a delivery archive (.tar.gz, unpacked into a scratch folder)."""
    path = Path(path)
    if path.is_dir():
        return check_folder(path)
    if not path.is_file():
        raise L1mlError("no such delivery folder or archive", path=path)
    with tempfile.TemporaryDirectory(prefix="l1ml-check-") as tmp:
        try:
            with tarfile.open(path, "r:gz") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise L1mlError(f"not a readable .tar.gz ({exc})", path=path) from None
        tops = [p for p in Path(tmp).iterdir()]
        if len(tops) != 1 or not tops[0].is_dir():
            raise L1mlError("a delivery archive holds one version folder", path=path)
        result = check_folder(tops[0])
    result.path = path
    return result


@dataclass
class Listed:
    model: str
    version: str
    path: Path
    kind: str
    created: str
    status: str  # ok / DAMAGED: ... / no archive / unreadable manifest


def list_deliveries(root: Path, model: str | None = None) -> list[Listed]:
    from l1ml.deliver.gate import VERSION_RE, version_key

    root = Path(root)
    models = [root / model] if model else sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if model and not (root / model).is_dir():
        raise L1mlError(f"no deliveries of this model under {root}", key="MODEL", value=model)
    found = []
    for model_dir in models:
        versions = [p for p in model_dir.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
        for folder in sorted(versions, key=lambda p: version_key(p.name)):
            try:
                result = check_folder(folder)
            except L1mlError:
                found.append(Listed(model_dir.name, folder.name, folder, "?", "?", "unreadable manifest"))
                continue
            status = result.status()
            if result.ok and not (model_dir / f"{folder.name}.tar.gz").is_file():
                status = "ok, no archive"
            m = result.manifest
            found.append(Listed(model_dir.name, folder.name, folder, m.get("kind", "?"), m.get("created", "?"), status))
    return found
