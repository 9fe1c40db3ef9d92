"""Run directories and their `manifest.json`: what went in (config, input hashes, seed, versions, command) and what came out."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from l1ml.errors import L1mlError

#: Distributions whose versions a manifest records when they are installed.
TOOL_DISTRIBUTIONS = (
    "l1ml", "numpy", "h5py", "pydantic", "pythia8mc", "matplotlib", "mplhep",
    "tensorflow", "keras", "qkeras", "hls4ml", "conifer", "xgboost",
)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def tree_hash(folder: str | Path) -> str:
    """SHA-256 over the relative paths and contents of every file below `folder`."""
    folder = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        h.update(bytes.fromhex(sha256_file(path)))
    return h.hexdigest()


#: What a verification covers besides the firmware: a change to any of these after `l1ml verify` makes its report stale.
FINGERPRINT_FILES = ("config.yaml", "metrics.json", "normalisation.json", "byo.json", "inputs.json", "manifest.json")


def fingerprint(target: str | Path, firmware_dirs: list[Path]) -> dict[str, str]:
    """Content hashes of what a verification of `target` (a run or a --out folder) depends on: the config, thresholds,
    normalisation, the model folder and the verified firmware projects, by path relative to `target`."""
    target = Path(target)
    found = {name: sha256_file(target / name) for name in FINGERPRINT_FILES if (target / name).is_file()}
    for folder in [target / "model", *firmware_dirs]:
        if folder.is_dir():
            found[f"{Path(folder).resolve().relative_to(target.resolve())}/"] = tree_hash(folder)
    return found


def tool_versions(names: tuple[str, ...] = TOOL_DISTRIBUTIONS) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def git_state() -> dict[str, object]:
    """The l1ml source tree's commit and whether it has uncommitted changes (None outside a git checkout)."""
    src = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, check=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src, capture_output=True,
                               text=True, check=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def read_json(path: str | Path, what: str) -> object:
    """A JSON file l1ml wrote; a missing or damaged one is one error naming it and `what` it should be."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise L1mlError(f"no {what} here: the folder is incomplete", path=path) from None
    except (OSError, ValueError) as exc:
        raise L1mlError(f"the {what} is damaged: not JSON ({exc})", path=path) from None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file name beside `path` to write to; when the block ends without an error the file is synced to disk
    and renamed to `path` in one step (readers see the old file or the whole new one), otherwise removed. The name is
    unique (`.<name>.tmp-<pid>-<random>`: processes and threads writing the same file never share one) and hidden, with
    the `.*.tmp-*` pattern that clean-ups of leftovers (after `kill -9`) look for.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("complete")
    >>> [p.name for p in folder.iterdir()], (folder / "a.txt").read_text()
    (['a.txt'], 'complete')
    >>> import shutil; shutil.rmtree(folder)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write `data` (text as UTF-8) to `path` atomically: see `atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def write_json_atomic(path: str | Path, data: object) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


MANIFEST_FORMAT = "l1ml-manifest/1"  # l1ml.documents.StepManifest reads it


def write_manifest(path: str | Path, *, step: str, config_path: str | Path | None = None, config_text: str | None = None,
                   resolved: dict | None = None, inputs: dict[str, str | Path] | None = None,
                   outputs: dict[str, str | Path] | None = None, seed: int | None = None,
                   extra: dict | None = None) -> dict:
    """Write a manifest for one step; input and output files are recorded with their SHA-256."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "step": step,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "cwd": os.getcwd(),
        "host": platform.node(),
        "l1ml_git": git_state(),
        "tools": tool_versions(),
        "seed": seed,
        "config": None if config_path is None else {
            "path": str(config_path),
            "sha256": hashlib.sha256(config_text.encode()).hexdigest() if config_text is not None else None,
            "as_given": config_text,
            "resolved": resolved,
        },
        "inputs": {k: {"path": str(p), "sha256": sha256_file(p)} for k, p in (inputs or {}).items()},
        "outputs": {k: {"path": str(p), "sha256": sha256_file(p)} for k, p in (outputs or {}).items()},
    }
    if extra:
        manifest.update(extra)
    write_json_atomic(path, manifest)
    return manifest
