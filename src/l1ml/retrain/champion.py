"""The champion `l1ml retrain` compares with: a registered model version (`NAME@ALIAS`, through the registry's tag
`l1ml.run_dir`) or a training run folder given directly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from l1ml.errors import L1mlError
from l1ml.runfolder import require_trained

RUN_DIR_TAG = "l1ml.run_dir"
DEFAULT_ALIAS = "production"


@dataclass
class Champion:
    spec: str  # as given: NAME@ALIAS or a run folder
    run_dir: Path
    model_version: dict | None = None  # name, version, aliases, tags of the registry's version
    alias: str | None = None  # the alias of NAME@ALIAS (None for a run folder, a version number or X.Y.Z)


def is_registry_spec(spec: str) -> bool:
    return "@" in spec and not Path(spec).is_dir()


def alias_of(spec: str) -> str | None:
    """The alias a NAME@X spec names: X unless it is a version number (3) or a delivery version (0.1.2).

    >>> alias_of("ae_demo@production"), alias_of("ae_demo@3"), alias_of("ae_demo@0.1.2")
    ('production', None, None)
    """
    tail = spec.rpartition("@")[2]
    return None if tail.replace(".", "").isdigit() else tail


def find_champion(spec: str, uri: str | None = None) -> Champion:
    """The champion of `spec`: a finished training run folder, or NAME@ALIAS|VERSION resolved in the registry of the
    tracking store `uri` (its version's `l1ml.run_dir` tag names the run folder, which must be on this machine)."""
    path = Path(spec)
    if path.is_dir():
        require_trained(path, "retrain", check_events=False)  # the champion is scored on the challenger's events
        return Champion(spec, path.resolve())
    if "@" not in spec:
        raise L1mlError("neither a training run folder nor a registered model NAME@ALIAS (e.g. ae_demo@production)",
                        key="--champion", value=spec)
    if uri is None:
        raise L1mlError("a registered champion needs the tracking store (the registry): drop --no-tracking, or give the "
                        "champion's run folder", key="--champion", value=spec)
    from l1ml.track import registry  # the registry's module imports MLflow
    from l1ml.track.store import client

    version = registry.resolve(client(uri), spec)
    tags = dict(version.tags or {})
    recorded = tags.get(RUN_DIR_TAG)
    if not recorded:
        raise L1mlError(f"version {version.version} of {version.name} has no {RUN_DIR_TAG} tag: its training run is not "
                        "known; give the champion's run folder instead", key="--champion", value=spec)
    run_dir = Path(recorded)
    if not run_dir.is_dir():
        raise L1mlError(f"the champion's training run {run_dir} (tag {RUN_DIR_TAG} of version {version.version} of "
                        f"{version.name}) is not on this machine: copy it there, or give its run folder",
                        key="--champion", value=spec)
    require_trained(run_dir, "retrain", check_events=False)
    info = {"name": version.name, "version": str(version.version), "aliases": list(getattr(version, "aliases", []) or []),
            "run_id": getattr(version, "run_id", None), "tags": tags}
    return Champion(spec, run_dir.resolve(), info, alias_of(spec))
