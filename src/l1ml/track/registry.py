"""The MLflow Model Registry of l1ml's deliveries: register, resolve, promote (aliases, never stages), history.

A registered model is an l1ml model (its name); each model version is one delivery: its source is the archive that
the deliver step logged (`runs:/<deliver run>/archive/<version>.tar.gz`), its tags say what the delivery is (version,
kind, verify and synthesis summaries, thresholds as bit patterns, the archive's SHA-256 and path, the package and
training run folders). Registering a delivery twice returns the version registered first (same archive SHA-256).

A promotion points an alias (`production`) at a version, only if its verify passed and its archive still has the
SHA-256 it was registered with. MLflow keeps no history of aliases, so every promotion is also written into the
registered model itself, as the tag `l1ml.history.<alias>.<seq>` holding a `Promotion` (JSON): which version held the
alias at any time is read back from there (`history`, `at`).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator

from l1ml.documents import Document, parse
from l1ml.errors import L1mlError
from l1ml.runs import sha256_file
from l1ml.track.records import read_delivery

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

HISTORY_PREFIX = "l1ml.history."
DELIVERY_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
#: MLflow's alias rule (letters, digits, _ and -; not `latest`, not `v<digits>`), and not all digits: NAME@3 is a version
ALIAS_RE = re.compile(r"^(?!\d+$)(?![vV]\d+$)(?!(?i:latest)$)[\w-]{1,255}$")
ARCHIVE_ARTIFACT = "archive"  # where the deliver step logs the archive (l1ml.track.records)


class PromotionRefused(L1mlError):
    """A promotion the registry will not make: the delivery was not verified, or its archive is not the one registered."""


class Promotion(Document):
    """A promotion as the registry keeps it (a registered-model tag `l1ml.history.<alias>.<seq>`, JSON)."""

    format: Literal["l1ml-promotion/1"] = "l1ml-promotion/1"
    model: str
    alias: str
    seq: int
    time: str  # UTC, ISO 8601
    version: str  # the MLflow model version that took the alias
    delivery_version: str | None
    previous_version: str | None  # the one that held it before (None: nobody)
    previous_delivery_version: str | None
    note: str = ""
    user: str

    @field_validator("time")
    @classmethod
    def _utc_time(cls, value: str) -> str:
        when = _dt.datetime.fromisoformat(value)
        if when.utcoffset() != _dt.timedelta(0):
            raise ValueError("not a UTC time")
        return value

    @property
    def when(self) -> _dt.datetime:
        return _dt.datetime.fromisoformat(self.time)


# ------------------------------------------------------------------------------------------------ registering


def register_delivery(mlflow_client: MlflowClient, package_dir: Path, deliver_run_id: str | None) -> ModelVersion:
    """The model version of the delivery `package_dir` (`deliveries/<model>/<version>/`), registered if it is not yet.

    Its source is the archive logged by the deliver run `deliver_run_id` (found by the archive's SHA-256 when None);
    with no tracked deliver run, the archive's file (a local store only: a tracking server takes sources of runs)."""
    facts = delivery_tags(package_dir)
    name, sha = facts["l1ml.model"], facts["l1ml.archive_sha256"]
    _ensure_model(mlflow_client, name)
    found = _versions(mlflow_client, name, f"tags.`l1ml.archive_sha256` = '{sha}'")
    if found:
        return min(found, key=lambda v: int(v.version))
    if deliver_run_id is None:
        deliver_run_id = _deliver_run(mlflow_client, name, sha)
    archive = Path(facts["l1ml.archive_path"])
    if deliver_run_id is None:
        source, parent = archive.as_uri(), None
    else:
        run = mlflow_client.get_run(deliver_run_id)
        listed = {a.path for a in mlflow_client.list_artifacts(deliver_run_id, ARCHIVE_ARTIFACT)}
        if f"{ARCHIVE_ARTIFACT}/{archive.name}" not in listed:
            raise L1mlError(f"the deliver run {deliver_run_id} has no artifact {ARCHIVE_ARTIFACT}/{archive.name} to "
                            "register", path=package_dir)
        source, parent = f"runs:/{deliver_run_id}/{ARCHIVE_ARTIFACT}/{archive.name}", run.data.tags.get("mlflow.parentRunId")
        facts["l1ml.deliver_run_id"] = deliver_run_id
    if parent:
        facts["l1ml.mlflow_run_id"] = parent
    description = f"delivery {facts['l1ml.delivery_version']} ({facts['l1ml.kind']}) of run {facts['l1ml.run']}"
    from mlflow.exceptions import MlflowException  # heavy: MLflow

    try:
        # a tracking server takes a runs:/ source only from the run that holds it: run_id is the deliver run, whose
        # parent (tag l1ml.mlflow_run_id) is the l1ml run's MLflow run
        return mlflow_client.create_model_version(name, source, run_id=deliver_run_id, tags=facts, description=description)
    except MlflowException as exc:
        if deliver_run_id is None and "source" in str(exc):
            raise L1mlError("this store registers a delivery only from its tracked deliver run (`l1ml track sync` sends "
                            "one that is queued)", path=package_dir) from None
        raise


def delivery_tags(package_dir: Path) -> dict[str, str]:
    """The model version tags of a delivery package, from its manifest, record, thresholds and archive (checked)."""
    folder, manifest, record, archive = read_delivery(package_dir)
    thresholds_file = folder / "thresholds.json"
    listed = manifest.files.get("thresholds.json")
    if listed is None or not thresholds_file.is_file() or sha256_file(thresholds_file) != listed.sha256:
        raise L1mlError("missing, or not the one the manifest lists", path=thresholds_file)
    run = manifest.lineage.get("run", {})
    return {
        "l1ml.model": manifest.model,
        "l1ml.delivery_version": manifest.version,
        "l1ml.kind": manifest.kind,
        "l1ml.verify_passed": "true" if manifest.verify.get("passed") is True else "false",
        "l1ml.verify": _compact(verify_summary(manifest.verify)),
        "l1ml.synthesis": _compact(synthesis_summary(manifest.synthesis)),
        "l1ml.thresholds": _compact(thresholds_summary(json.loads(thresholds_file.read_text()))),
        "l1ml.archive_sha256": record.archive_sha256,
        "l1ml.archive_path": str(archive),
        "l1ml.package_dir": str(folder),
        "l1ml.run_dir": str(run.get("path", "")),
        "l1ml.run": f"{manifest.model}/{run.get('id', '')}",
        "l1ml.created": manifest.created,
    }


def verify_summary(verify: dict) -> dict:
    """The manifest's verify block, short: passed, events, when, and each check's mismatches."""
    checks = {str(c.get("name", "?")).split(" (")[0]: {"passed": c.get("passed"), "mismatches": c.get("mismatches"),
                                                        "events": c.get("events")} for c in verify.get("checks", [])}
    return {"passed": verify.get("passed"), "events": verify.get("events"), "created": verify.get("created"),
            "checks": checks}


def synthesis_summary(synthesis: dict) -> dict:
    """The manifest's synthesis block, short: the HLS job's figures or why there are none, and the RTL's."""
    keys = ("job", "tool_version", "part", "clock_ns", "latency_worst_cycles", "latency_worst_ns", "within_budget",
            "resources")
    summary = {k: synthesis[k] for k in keys if k in synthesis} if "job" in synthesis else {"none": synthesis.get("none")}
    rtl = synthesis.get("rtl")
    if rtl:
        summary["rtl"] = {k: rtl.get(k) for k in ("tool", "part", "clock_period_ns", "latency_cycles", "mismatches", "events")}
    return summary


def thresholds_summary(thresholds: dict) -> dict:
    """thresholds.json, short: the score type and each rate's threshold as the bit pattern (hex) and integer code."""
    return {"score_type": thresholds.get("score_type"),
            "thresholds": [{"rate_khz": t["rate_khz"], "hex": t["hex"], "code": t["code"], "value": t["threshold"]}
                           for t in thresholds.get("thresholds", [])]}


def _compact(data) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _ensure_model(mlflow_client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException  # heavy: MLflow

    if _registered(mlflow_client, name) is not None:
        return
    description = (f"l1ml model {name}: each version is a delivery of `l1ml deliver` (its source the delivery's archive); "
                   "`l1ml models promote` sets aliases such as production and records each promotion in the tags "
                   f"{HISTORY_PREFIX}<alias>.<n>")
    try:
        mlflow_client.create_registered_model(name, tags={"l1ml.model": name}, description=description)
    except MlflowException:  # registered meanwhile by another process
        if _registered(mlflow_client, name) is None:
            raise


def _deliver_run(mlflow_client: MlflowClient, name: str, sha: str) -> str | None:
    """The complete deliver run of the archive `sha` in the model's experiment, if one was tracked."""
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        return None
    found = mlflow_client.search_runs([experiment.experiment_id], max_results=5, filter_string=(
        f"tags.`l1ml.step` = 'deliver' and tags.`l1ml.archive_sha256` = '{sha}' and tags.`l1ml.complete` = '1'"))
    return found[0].info.run_id if found else None


# ------------------------------------------------------------------------------------------------ finding versions


def _registered(mlflow_client: MlflowClient, name: str):
    """The registered model `name`, or None."""
    from mlflow.exceptions import MlflowException  # heavy: MLflow

    try:
        return mlflow_client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _versions(mlflow_client: MlflowClient, name: str, condition: str | None = None) -> list[ModelVersion]:
    """The versions of `name` (matching a search condition), oldest first."""
    query = f"name = '{name}'" + (f" and {condition}" if condition else "")
    found, token = [], None
    while True:
        page = mlflow_client.search_model_versions(query, page_token=token)
        found += list(page)
        token = page.token
        if not token:
            return sorted(found, key=lambda v: int(v.version))


def model_names(mlflow_client: MlflowClient) -> list[str]:
    found, token = [], None
    while True:
        page = mlflow_client.search_registered_models(max_results=100, page_token=token)
        found += [m.name for m in page]
        token = page.token
        if not token:
            return sorted(found)


def _require_model(mlflow_client: MlflowClient, name: str):
    model = _registered(mlflow_client, name)
    if model is None:
        names = model_names(mlflow_client)
        raise L1mlError(f"no registered model of this name; registered: {', '.join(names) or 'none'}", key="model",
                        value=name)
    return model


def _label(version: ModelVersion) -> str:
    delivery = (version.tags or {}).get("l1ml.delivery_version")
    return f"{version.version} ({delivery})" if delivery else str(version.version)


def find_version(mlflow_client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    """Version `version` of model `name`: an MLflow version number, or a delivery version X.Y.Z (the latest version
    registered of it)."""
    _require_model(mlflow_client, name)
    text = str(version).strip()
    every = _versions(mlflow_client, name)
    if text.isdigit():
        matches = [v for v in every if int(v.version) == int(text)]
    elif DELIVERY_VERSION_RE.match(text):
        matches = [v for v in every if (v.tags or {}).get("l1ml.delivery_version") == text]
    else:
        raise L1mlError("a version is an MLflow version number or a delivery version X.Y.Z", key="version", value=text)
    if not matches:
        raise L1mlError(f"model {name} has no such version; its versions: "
                        f"{', '.join(_label(v) for v in every) or 'none'}", key="version", value=text)
    return matches[-1]


def resolve(mlflow_client: MlflowClient, spec: str) -> ModelVersion:
    """The model version `spec` names: NAME@ALIAS, NAME@<MLflow version number>, NAME@<delivery version X.Y.Z>, or NAME
    (its latest version)."""
    name, _, which = spec.strip().partition("@")
    if not name:
        raise L1mlError("a model is NAME, NAME@ALIAS or NAME@VERSION", key="model", value=spec)
    model = _require_model(mlflow_client, name)
    if not which:
        every = _versions(mlflow_client, name)
        if not every:
            raise L1mlError(f"model {name} has no versions", key="model", value=spec)
        return every[-1]
    if which.isdigit() or DELIVERY_VERSION_RE.match(which):
        return find_version(mlflow_client, name, which)
    aliases = dict(model.aliases or {})
    if which not in aliases:
        known = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "none"
        raise L1mlError(f"model {name} has no such alias; its aliases: {known}", key="alias", value=which)
    return mlflow_client.get_model_version(name, str(aliases[which]))


# ------------------------------------------------------------------------------------------------ promotion


def check_alias(alias: str) -> str:
    if not ALIAS_RE.match(alias or ""):
        raise L1mlError("an alias is letters, digits, '_' and '-', not all digits, not 'latest' nor v<digits>",
                        key="alias", value=alias)
    return alias


def promotion_problems(version: ModelVersion) -> list[str]:
    """Why a version may not be promoted (empty: it may): its verify did not pass, its archive is gone or changed."""
    tags = version.tags or {}
    if "l1ml.archive_sha256" not in tags:
        return ["not a delivery registered by l1ml (no tag l1ml.archive_sha256)"]
    problems = []
    if tags.get("l1ml.verify_passed") != "true":
        problems.append(f"its verify did not pass (tag l1ml.verify_passed = {tags.get('l1ml.verify_passed')!r})")
    path, expected = tags.get("l1ml.archive_path", ""), tags["l1ml.archive_sha256"]
    if not path or not Path(path).is_file():
        problems.append(f"its archive {path or '(no l1ml.archive_path)'} is missing: it cannot be checked against its "
                        f"SHA-256 {expected}")
    else:
        actual = sha256_file(path)
        if actual != expected:
            problems.append(f"its archive {path} has changed: SHA-256 {actual}, registered {expected}")
    return problems


def promote(mlflow_client: MlflowClient, name: str, version: str | int, alias: str = "production", note: str = "") -> dict:
    """Point `alias` of model `name` at `version` (MLflow number or delivery version) and record it in the history.

    Refused (PromotionRefused, each reason named) for a delivery whose verify did not pass or whose archive is missing
    or no longer has its registered SHA-256. Promoting the version that holds the alias already changes nothing."""
    check_alias(alias)
    target = find_version(mlflow_client, name, version)
    problems = promotion_problems(target)
    if problems:
        raise PromotionRefused(f"promotion of {name} version {_label(target)} to {alias!r} refused: " + "; ".join(problems))
    model = _require_model(mlflow_client, name)
    holder = (model.aliases or {}).get(alias)
    entries = _history(mlflow_client, name, alias)
    if holder is not None and str(holder) == str(target.version) and entries and entries[-1].version == str(holder):
        return {**entries[-1].model_dump(), "unchanged": True}
    previous = mlflow_client.get_model_version(name, str(holder)) if holder is not None else None
    entry = _record(mlflow_client, name, Promotion(
        model=name, alias=alias, seq=0, time=_now(), version=str(target.version),
        delivery_version=(target.tags or {}).get("l1ml.delivery_version"),
        previous_version=str(previous.version) if previous else None,
        previous_delivery_version=(previous.tags or {}).get("l1ml.delivery_version") if previous else None,
        note=note, user=_user()))
    try:
        mlflow_client.set_registered_model_alias(name, alias, str(target.version))
    except BaseException:
        mlflow_client.delete_registered_model_tag(name, _history_key(alias, entry.seq))  # it did not happen
        raise
    return {**entry.model_dump(), "unchanged": False}


def _record(mlflow_client: MlflowClient, name: str, entry: Promotion) -> Promotion:
    """Write `entry` under the next free sequence number of its alias (a concurrent promotion takes the next one)."""
    for _ in range(10):
        seq = max((e.seq for e in _history(mlflow_client, name, entry.alias)), default=0) + 1
        entry = entry.model_copy(update={"seq": seq})
        key, value = _history_key(entry.alias, seq), entry.model_dump_json()
        mlflow_client.set_registered_model_tag(name, key, value)
        if (mlflow_client.get_registered_model(name).tags or {}).get(key) == value:
            return entry
    raise L1mlError("the promotion history is being written by other promotions: try again", key="model", value=name)


def _history_key(alias: str, seq: int) -> str:
    return f"{HISTORY_PREFIX}{alias}.{seq:06d}"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment (a container without passwd entry)
        return "unknown"


# ------------------------------------------------------------------------------------------------ history


def _history(mlflow_client: MlflowClient, name: str, alias: str | None = None) -> list[Promotion]:
    """The promotions recorded in model `name`'s tags (of `alias`, or all), validated, in time order."""
    tags = _require_model(mlflow_client, name).tags or {}
    entries = []
    for key, value in tags.items():
        if not key.startswith(HISTORY_PREFIX):
            continue
        source = f"registered model {name}, tag {key}"
        entry = parse(value, Promotion, source, again="not as `l1ml models promote` records a promotion: fix or delete the tag")
        if _history_key(entry.alias, entry.seq) != key or entry.model != name:
            raise L1mlError(f"the record says model {entry.model!r}, alias {entry.alias!r}, number {entry.seq}: not "
                            "the tag it is kept in", path=source)
        if alias is None or entry.alias == alias:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.when, e.alias, e.seq))


def history(mlflow_client: MlflowClient, name: str, alias: str | None = None) -> list[dict]:
    """Every promotion of model `name` (of `alias`, or of all aliases) in time order; `until` is when the next promotion
    of the same alias replaced it (None: it holds the alias still, as far as l1ml recorded)."""
    entries = _history(mlflow_client, name, alias)
    rows = []
    for i, e in enumerate(entries):
        later = next((n for n in entries[i + 1 :] if n.alias == e.alias), None)
        rows.append({**e.model_dump(), "until": later.time if later else None})
    return rows


def utc(when: _dt.datetime) -> _dt.datetime:
    """`when` as an aware UTC time (a naive one is taken as UTC)."""
    return when.replace(tzinfo=_dt.UTC) if when.tzinfo is None else when.astimezone(_dt.UTC)


def at(mlflow_client: MlflowClient, name: str, when: _dt.datetime, alias: str = "production") -> dict | None:
    """The promotion that held `alias` of model `name` at time `when` (naive: UTC), or None (nothing held it)."""
    when = utc(when)
    held = [row for row in history(mlflow_client, name, alias) if _dt.datetime.fromisoformat(row["time"]) <= when]
    return held[-1] if held else None


def during(mlflow_client: MlflowClient, name: str, start: _dt.datetime, end: _dt.datetime,
           alias: str = "production") -> list[dict]:
    """The promotions that held `alias` at some time from `start` to `end`: the holder at `start`, and each one after."""
    start, end = utc(start), utc(end)
    rows = history(mlflow_client, name, alias)
    first = at(mlflow_client, name, start, alias)
    later = [r for r in rows if start < _dt.datetime.fromisoformat(r["time"]) <= end]
    return ([first] if first else []) + later


def parse_when(text: str) -> tuple[_dt.datetime, _dt.datetime]:
    """A date (YYYY-MM-DD: the whole day, UTC) or an ISO time (naive: UTC) as the span (start, end) it covers.

    >>> parse_when("2026-05-12")[1].isoformat()
    '2026-05-12T23:59:59.999999+00:00'
    >>> parse_when("2026-05-12T10:30:00+02:00")[0].isoformat()
    '2026-05-12T08:30:00+00:00'
    """
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            start = _dt.datetime.fromisoformat(text).replace(tzinfo=_dt.UTC)
            return start, start + _dt.timedelta(days=1) - _dt.timedelta(microseconds=1)
        when = utc(_dt.datetime.fromisoformat(text))
    except ValueError:
        raise L1mlError("a date is YYYY-MM-DD (a whole day, UTC) or an ISO time such as 2026-05-12T10:30:00Z",
                        key="--at", value=text) from None
    return when, when


# ------------------------------------------------------------------------------------------------ listing


def _created(ms) -> str | None:
    if ms is None:
        return None
    return _dt.datetime.fromtimestamp(int(ms) / 1000, _dt.UTC).isoformat(timespec="seconds")


def list_models(mlflow_client: MlflowClient) -> list[dict]:
    """One row per registered model: its latest version (and delivery version), aliases -> versions, creation time."""
    rows = []
    for name in model_names(mlflow_client):
        model = mlflow_client.get_registered_model(name)
        every = _versions(mlflow_client, name)
        latest = every[-1] if every else None
        rows.append({"name": name, "versions": len(every), "latest_version": str(latest.version) if latest else None,
                     "latest_delivery_version": (latest.tags or {}).get("l1ml.delivery_version") if latest else None,
                     "aliases": {a: str(v) for a, v in sorted((model.aliases or {}).items())},
                     "created": _created(model.creation_timestamp)})
    return rows


def describe(mlflow_client: MlflowClient, version: ModelVersion) -> dict:
    """What `l1ml models show` says of a model version: its delivery's tags, decoded, its aliases and the model's
    promotion history."""
    tags = version.tags or {}

    def decoded(key: str):
        try:
            return json.loads(tags[key]) if key in tags else None
        except ValueError:
            return tags[key]

    model = mlflow_client.get_registered_model(version.name)
    aliases = sorted(a for a, v in (model.aliases or {}).items() if str(v) == str(version.version))
    return {"name": version.name, "version": str(version.version), "delivery_version": tags.get("l1ml.delivery_version"),
            "aliases": aliases, "kind": tags.get("l1ml.kind"), "verify_passed": tags.get("l1ml.verify_passed") == "true",
            "verify": decoded("l1ml.verify"), "synthesis": decoded("l1ml.synthesis"), "thresholds": decoded("l1ml.thresholds"),
            "archive_path": tags.get("l1ml.archive_path"), "archive_sha256": tags.get("l1ml.archive_sha256"),
            "package_dir": tags.get("l1ml.package_dir"), "run_dir": tags.get("l1ml.run_dir"), "run": tags.get("l1ml.run"),
            "mlflow_run_id": tags.get("l1ml.mlflow_run_id"), "deliver_run_id": tags.get("l1ml.deliver_run_id"),
            "source": version.source, "created": _created(version.creation_timestamp),
            "history": history(mlflow_client, version.name)}
