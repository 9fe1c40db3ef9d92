"""The l1ml run as an MLflow record (the parent of every step's record), and the helpers the step records share.

A training run folder `runs/<name>/<folder>` is experiment `<name>` (its config's name), key `run:<name>/<folder>`:
params are its resolved config flattened with dotted keys, metrics its AUCs, efficiencies, thresholds and training
curves, tags its lineage (commit, events and data config hashes, tool versions). A model converted with `--out` has
no training run: its folder is the run of experiment `external`, key `run:external/<folder>-<hash of its path>`.
Both are read from the documents on disk, so the record is the same whichever step logs it first.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from l1ml.documents import ByoRecord, Metrics, RunInputs, RunState, StepManifest, read
from l1ml.errors import L1mlError
from l1ml.runs import read_json, sha256_file
from l1ml.track.log import Record

EXTERNAL = "external"  # the experiment of models converted with --out
RUN_ARTIFACTS = ("config.yaml", "metrics.json", "manifest.json", "inputs.json", "normalisation.json", "run.json")
RUN_FOLDERS = ("plots", "model")
FLAVOURS = ("float", "quantized")


# ------------------------------------------------------------------------------------------------ shared helpers


def text(value: object) -> str:
    """A param or tag value: strings as they are, everything else as JSON (true, null, 0.002, ["a", "b"]).

    >>> text("vu13p"), text(True), text(None), text(0.002), text(["Ato4l", "LQ_btau"])
    ('vu13p', 'true', 'null', '0.002', '["Ato4l", "LQ_btau"]')
    """
    return value if isinstance(value, str) else json.dumps(value)


def flatten(data: object, prefix: str = "") -> dict[str, str]:
    """Params from nested mappings: dotted keys; lists of mappings by index; lists of plain values as one JSON value.

    >>> flatten({"model": {"encoder": [{"units": 32}, {"units": 16}], "latent": 3}, "rates": [100.0, 250.0], "x": {}})
    {'model.encoder.0.units': '32', 'model.encoder.1.units': '16', 'model.latent': '3', 'rates': '[100.0, 250.0]', 'x': '{}'}
    """
    if isinstance(data, dict) and data:
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten(value, name(f"{prefix}.{key}" if prefix else str(key))))
        return out
    if isinstance(data, list) and any(isinstance(v, dict | list) for v in data):
        out = {}
        for i, value in enumerate(data):
            out.update(flatten(value, f"{prefix}.{i}"))
        return out
    return {prefix: text(data)} if prefix else {}


def name(raw: str) -> str:
    """A metric, param or tag name MLflow accepts: other characters become '_', no empty or relative path parts.

    >>> name("mismatches/bit_exact (C-simulation vs QKeras)"), name("a//b/")
    ('mismatches/bit_exact _C-simulation vs QKeras_', 'a/b')
    """
    parts = [re.sub(r"[^\w.\- :]", "_", p) for p in raw.split("/") if p]
    return "/".join("_" if p in (".", "..") else p for p in parts)


def key(*parts: str) -> str:
    """A record key: its parts joined by ':', without the quotes that would break an MLflow filter string."""
    return ":".join(parts).replace("'", "_").replace("\\", "_")


def digest(path: Path) -> str:
    """The first 16 hex of a document's SHA-256: a step's record changes when its document does."""
    return sha256_file(path)[:16]


def child(parent: Record, step: str, run_name: str, content: str, **fields) -> Record:
    """A step's record, nested in the l1ml run `parent`: key `<step>:<run>:<content>`, the run's identifying tags."""
    tags = {k: parent.tags[k] for k in ("l1ml.run", "l1ml.run_dir", "l1ml.model")}
    tags.update(fields.pop("tags", {}))
    tags["l1ml.step"] = step
    return Record(experiment=parent.experiment, key=key(step, parent.tags["l1ml.run"], content), name=run_name,
                  tags=tags, parent=parent, **fields)


def orphan(step: str, model: str, run: str, run_dir: str | None, run_name: str, content: str, **fields) -> Record:
    """A step's record whose l1ml run folder is not here (a synthesis job or a delivery): alone in its model's
    experiment, under the key it would have as a child of that run."""
    tags = {**fields.pop("tags", {}), **present({"l1ml.step": step, "l1ml.run": run, "l1ml.run_dir": run_dir, "l1ml.model": model})}
    return Record(experiment=model, key=key(step, run, content), name=run_name, tags=tags, **fields)


def artifacts(folder: Path, names: tuple[str, ...], artifact_path: str | None = None) -> list[tuple[Path, str | None]]:
    """The files (or folders) `names` of `folder` that exist."""
    return [(folder / n, artifact_path) for n in names if (folder / n).exists()]


def present(tags: dict[str, object]) -> dict[str, str]:
    """The tags that have a value, as text (MLflow shows an empty tag as if it said something)."""
    return {k: text(v) for k, v in tags.items() if v is not None and v != ""}


NUMBER = (int, float)
_KINDS = {dict: "a mapping", str: "text", NUMBER: "a number"}


def need(data: object, field: str, path: Path, where: str, kind: type | tuple = dict):
    """`data[field]` of a free-form part of a document, of type `kind`; anything else is one error naming the file and
    key (`where.field`)."""
    value = data.get(field) if isinstance(data, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise L1mlError(f"damaged: missing or not {_KINDS.get(kind, kind)}", path=path, key=f"{where}.{field}" if where else field)
    return value


# ------------------------------------------------------------------------------------------------ the l1ml run


def parent_of(target: Path) -> Record:
    """The l1ml run a step's target belongs to: a training run folder, or a folder converted with --out."""
    target = Path(target)
    if (target / "run.json").is_file():
        return run_record(target)
    if (target / "byo.json").is_file():
        return external_record(target)
    raise L1mlError("not a training run (run.json) nor a model converted with --out (byo.json)", path=target)


def run_record(run_dir: str | Path) -> Record:
    """The MLflow record of a finished training run: the parent of its steps' records."""
    run_dir = Path(run_dir).resolve()
    state = read(run_dir / "run.json", RunState, "the run's state")
    if state.status != "finished":
        raise L1mlError(f"training did not finish (status {state.status}): only finished runs are tracked",
                        path=run_dir / "run.json", key="status")
    manifest = read(run_dir / "manifest.json", StepManifest)
    if manifest.step != "train" or not manifest.config or not isinstance(manifest.config.get("resolved"), dict):
        raise L1mlError("not a training run's manifest (no step 'train' with a resolved config)", path=run_dir / "manifest.json")
    inputs = read(run_dir / "inputs.json", RunInputs, "the record of the run's inputs")
    metrics = read(run_dir / "metrics.json", Metrics)
    config = manifest.config["resolved"]
    model = str(config.get("name") or run_dir.parent.name)
    run = f"{model}/{run_dir.name}"
    tags = {"l1ml.step": "train", "l1ml.run": run, "l1ml.run_dir": str(run_dir), "l1ml.model": model,
            "l1ml.events_sha256": inputs.events.sha256, "l1ml.config_hash": manifest.config_hash or state.config_hash,
            "l1ml.host": manifest.host, **_git_tags(manifest.l1ml_git),
            **{name(f"l1ml.tool.{dist}"): v for dist, v in manifest.tools.items()}}
    if inputs.data_config is not None:
        tags["l1ml.data_config_sha256"] = inputs.data_config.sha256
    values = evaluation_metrics(metrics, run_dir / "metrics.json") + training_curves(run_dir)
    if manifest.training_seconds is not None:
        values.append(("training_seconds", manifest.training_seconds, 0))
    return Record(experiment=model, key=key("run", run), name=run, params=flatten(config), metrics=values, tags=tags,
                  artifacts=artifacts(run_dir, RUN_ARTIFACTS) + [(run_dir / f, f) for f in RUN_FOLDERS if (run_dir / f).is_dir()])


def _git_tags(git: dict) -> dict[str, str]:
    tags = {}
    if git.get("commit"):
        tags["l1ml.git_commit"] = tags["mlflow.source.git.commit"] = str(git["commit"])
    if git.get("dirty") is not None:
        tags["l1ml.git_dirty"] = text(bool(git["dirty"]))
    return tags


def evaluation_metrics(metrics: Metrics, path: Path) -> list[tuple[str, float, int]]:
    """metrics.json as MLflow metrics: `auc/<flavour>/<signal>`, `eff_<rate>kHz/<flavour>/<signal>` (and their
    errors), `threshold_<rate>kHz/<flavour>`, `achieved_rate_<rate>kHz/<flavour>` (and its error)."""
    out: list[tuple[str, float, int]] = []
    for flavour, rows in metrics.thresholds.items():
        for row in rows:
            rate = f"{row.rate_khz:g}kHz"
            out += [(f"threshold_{rate}/{flavour}", row.threshold, 0),
                    (f"achieved_rate_{rate}/{flavour}", row.achieved_rate_khz, 0),
                    (f"achieved_rate_err_{rate}/{flavour}", row.achieved_rate_err_khz, 0)]
    for signal, entry in metrics.signals.items():
        for flavour in FLAVOURS:
            where = f"signals.{signal}.{flavour}"
            figures = need(entry, flavour, path, f"signals.{signal}")
            out += [(name(f"auc/{flavour}/{signal}"), float(need(figures, "auc", path, where, NUMBER)), 0),
                    (name(f"auc_err/{flavour}/{signal}"), float(need(figures, "auc_err", path, where, NUMBER)), 0)]
            for rate in need(figures, "efficiency", path, where):
                eff = need(figures["efficiency"], rate, path, f"{where}.efficiency")
                at = f"{where}.efficiency.{rate}"
                out += [(name(f"eff_{rate}kHz/{flavour}/{signal}"), float(need(eff, "value", path, at, NUMBER)), 0),
                        (name(f"eff_err_{rate}kHz/{flavour}/{signal}"), float(need(eff, "error", path, at, NUMBER)), 0)]
    return out


def training_curves(run_dir: Path) -> list[tuple[str, float, int]]:
    """`training/<phase>/<metric>` per epoch (step 1 = the first epoch) from each `checkpoints/<phase>/history.json`
    (networks write one per phase; a BDT's per-round losses are not kept on disk)."""
    out: list[tuple[str, float, int]] = []
    for path in sorted(Path(run_dir).glob("checkpoints/*/history.json")):
        history = read_json(path, "training history")
        if not isinstance(history, dict):
            raise L1mlError("damaged training history: not a mapping of metric to values per epoch", path=path)
        for metric, values in history.items():
            if not isinstance(values, list):
                continue  # a label, e.g. the name of the loss
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                raise L1mlError("damaged training history: not numbers", path=path, key=metric)
            out += [(name(f"training/{path.parent.name}/{metric}"), float(v), epoch) for epoch, v in enumerate(values, 1)]
    return out


def external_record(folder: str | Path) -> Record:
    """The record of a folder converted with `l1ml convert --out` (no training run): experiment `external`."""
    folder = Path(folder).resolve()
    byo = read(folder / "byo.json", ByoRecord)
    run = f"{EXTERNAL}/{folder.name}-{hashlib.sha256(str(folder).encode()).hexdigest()[:8]}"
    tags = {"l1ml.step": EXTERNAL, "l1ml.run": run, "l1ml.run_dir": str(folder), "l1ml.model": folder.name,
            "l1ml.byo_kind": byo.kind,
            **{name(f"l1ml.source_sha256.{role}"): f.sha256 for role, f in byo.source.items()}}
    return Record(experiment=EXTERNAL, key=key("run", run), name=run, params=flatten(byo.model_dump(exclude={"format"})),
                  tags=tags, artifacts=artifacts(folder, ("byo.json",)) + artifacts(folder, ("model",), "model"))
