"""A delivery's file list and its checks: `l1ml deliver --check PATH` and `l1ml deliver --list [MODEL]`.

Every file of a package but manifest.json itself is listed in the manifest with its SHA-256 and size; a check
recomputes them and names each changed, missing and extra file. Files that the package's own build makes (the
emulator's library and test program: `make`, `make test`, `make install` in `emulator/`) are not extra: the manifest
lists their patterns under `build_products`, and a check names them apart, as ignored. The manifest itself is covered
by the delivery's record, `<model>/<version>.record.json` beside the folder and the archive, which holds the SHA-256 of
the manifest and of the archive; the folder's name, the manifest's version and model, the archive's name and its top
folder must agree, and the manifest's kind must match the content (a firmware release has a firmware/ folder, an
emulator-only delivery has none; RTL the manifest describes is in the package, and an RTL-only delivery, which had no
synthesis, has no other firmware).
"""

from __future__ import annotations

import fnmatch
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from l1ml.deliver.cmssw import BUILD_PRODUCTS
from l1ml.deliver.gate import VERSION_RE, version_key
from l1ml.documents import DeliveryManifest, DeliveryRecord, read
from l1ml.errors import L1mlError
from l1ml.runs import sha256_file

MANIFEST = "manifest.json"


def rtl_only(kind: str, synthesis: dict) -> bool:
    """Whether a manifest's kind and `synthesis` say RTL-only firmware: its RTL, and no synthesis job."""
    return kind == "firmware" and "rtl" in synthesis and "job" not in synthesis


def kind_label(manifest: DeliveryManifest) -> str:
    """The kind as listings show it: an RTL-only delivery is firmware that no synthesis made."""
    return "firmware (RTL only)" if rtl_only(manifest.kind, manifest.synthesis) else manifest.kind


def record_path(model_root: Path, version: str) -> Path:
    return Path(model_root) / f"{version}.record.json"


def make_record(manifest: DeliveryManifest, manifest_path: Path, archive: Path) -> DeliveryRecord:
    return DeliveryRecord(model=manifest.model, version=manifest.version, kind=manifest.kind, created=manifest.created,
                          manifest_sha256=sha256_file(manifest_path), archive_sha256=sha256_file(archive))


def read_record(path: Path) -> DeliveryRecord:
    return read(path, DeliveryRecord)


def file_hashes(folder: Path) -> dict[str, dict]:
    return {str(p.relative_to(folder)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file() and str(p.relative_to(folder)) != MANIFEST}


def listing(folder: Path) -> dict:
    """The manifest's `files` (every file of the package) and `build_products` (the patterns of what its build makes)."""

    files = file_hashes(folder)
    built = [rel for rel in files if is_build_product(rel, BUILD_PRODUCTS)]
    if built:
        raise L1mlError(f"the package holds build products ({', '.join(built)}): build in a scratch copy", path=folder)
    return {"files": files, "build_products": list(BUILD_PRODUCTS)}


def is_build_product(rel: str, patterns) -> bool:
    """Whether the relative path `rel` matches one of the glob `patterns`, part by part (`*` stays inside one folder).

    >>> is_build_product("emulator/m_v1_0_0/m_v1_0_0.so", ["emulator/*/*.so"])
    True
    >>> is_build_product("emulator/m_v1_0_0/firmware/x.so", ["emulator/*/*.so"])
    False
    """
    parts = rel.split("/")
    return any(len(p.split("/")) == len(parts) and all(map(fnmatch.fnmatchcase, parts, p.split("/"))) for p in patterns)


@dataclass
class CheckResult:
    path: Path
    manifest: DeliveryManifest
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)  # manifest, names, record and content that disagree
    built: list[str] = field(default_factory=list)  # build products of the package's own build: not part of it, ignored

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.inconsistent)

    def status(self) -> str:
        if self.ok:
            return "ok"
        parts = [f"{len(v)} {k}" for k, v in (("changed", self.changed), ("missing", self.missing), ("extra", self.extra),
                                              ("inconsistent", self.inconsistent)) if v]
        return "DAMAGED: " + ", ".join(parts)

    def lines(self) -> list[str]:
        return ([f"changed: {p}" for p in self.changed] + [f"missing: {p}" for p in self.missing]
                + [f"extra: {p}" for p in self.extra] + [f"inconsistent: {p}" for p in self.inconsistent]
                + [f"ignored: {p} (a build product, not part of the delivery)" for p in self.built])


def read_manifest(folder: Path) -> DeliveryManifest:
    return read(Path(folder) / MANIFEST, DeliveryManifest, "not a delivery")


def check_folder(folder: Path, record: Path | None = None) -> CheckResult:
    """Check a version folder against its manifest, and the manifest against the delivery record (by default the one
    beside the folder, `<version>.record.json`)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    listed = manifest.files
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    result = CheckResult(folder, manifest)
    result.missing = sorted(set(listed) - present)
    unlisted = sorted(present - set(listed))
    result.built = [rel for rel in unlisted if is_build_product(rel, manifest.build_products)]
    result.extra = [rel for rel in unlisted if rel not in result.built]
    result.changed = sorted(rel for rel in set(listed) & present if sha256_file(folder / rel) != listed[rel].sha256)
    result.inconsistent = _content_problems(folder.name, manifest)
    record = record_path(folder.parent, folder.name) if record is None else record
    if not record.is_file():
        result.missing.append(f"{record.name} (the delivery record, which covers manifest.json; keep it beside the "
                              "folder and the archive)")
    else:
        result.inconsistent += _record_problems(read_record(record), manifest, sha256_file(folder / MANIFEST), record)
    return result


def _content_problems(version: str, manifest: DeliveryManifest) -> list[str]:
    problems = []
    if manifest.version != version:
        problems.append(f"the manifest says version {manifest.version!r}, the folder is {version!r}")
    has_firmware = any(rel.startswith("firmware/") for rel in manifest.files)
    firmware = manifest.kind == "firmware"
    if firmware != has_firmware or manifest.firmware_release != firmware:
        problems.append(f"the manifest says kind {manifest.kind!r} (firmware_release {manifest.firmware_release!r}) but "
                        f"the package {'has' if has_firmware else 'has no'} firmware/ folder")
    return problems + _rtl_problems(manifest)


def _rtl_problems(manifest: DeliveryManifest) -> list[str]:
    rtl = manifest.synthesis.get("rtl")
    if not rtl:
        return []
    folder = f"{rtl.get('folder')}/"
    firmware = [rel for rel in manifest.files if rel.startswith("firmware/")]
    if not any(rel.startswith(folder) for rel in firmware):
        return [f"the manifest describes RTL in {folder} but the package has none there"]
    if rtl_only(manifest.kind, manifest.synthesis) and any(not rel.startswith(folder) for rel in firmware):
        return [f"the manifest says RTL-only firmware, but the package has firmware outside {folder}"]
    return []


def _record_problems(record: DeliveryRecord, manifest: DeliveryManifest, manifest_sha: str, record_file: Path) -> list[str]:
    problems = []
    if record.manifest_sha256 != manifest_sha:
        problems.append(f"manifest.json is not the one delivered (SHA-256 {manifest_sha[:12]}…, {record_file.name} says "
                        f"{record.manifest_sha256[:12]}…)")
    for key in ("model", "version", "kind"):
        if getattr(record, key) != getattr(manifest, key):
            problems.append(f"the manifest says {key} {getattr(manifest, key)!r}, {record_file.name} says "
                            f"{getattr(record, key)!r}")
    return problems


def check(path: str | Path) -> CheckResult:
    """Check a delivery folder, or a delivery archive (.tar.gz, unpacked into a scratch folder)."""
    path = Path(path)
    if path.is_dir():
        return check_folder(path)
    if not path.is_file():
        raise L1mlError("no such delivery folder or archive", path=path)
    version = path.name.removesuffix(".tar.gz")
    record = record_path(path.parent, version)
    with tempfile.TemporaryDirectory(prefix="l1ml-check-") as tmp:
        try:
            with tarfile.open(path, "r:gz") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise L1mlError(f"not a readable .tar.gz ({exc})", path=path) from None
        tops = [p for p in Path(tmp).iterdir()]
        if len(tops) != 1 or not tops[0].is_dir():
            raise L1mlError("a delivery archive holds one version folder", path=path)
        result = check_folder(tops[0], record)
    if tops[0].name != version:
        result.inconsistent.append(f"the archive {path.name} holds version folder {tops[0].name!r}")
    if record.is_file() and read_record(record).archive_sha256 != sha256_file(path):
        result.changed.append(f"{path.name} (not the archive delivered: its SHA-256 differs from {record.name})")
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
            found.append(Listed(model_dir.name, folder.name, folder, kind_label(m), m.created, status))
    return found
