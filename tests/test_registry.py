"""The model registry (`l1ml.track.registry`, `l1ml models`): a real delivery registered as a model version (tags equal
to its manifest's, idempotent), resolved by alias, number and delivery version, promoted with a recorded history that
answers which version held an alias at any time, and promotions refused for an unverified delivery or an archive that
is missing or changed; against a real tracking server over HTTP and a local SQLite store. No mocks of MLflow."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import signal
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from l1ml.errors import L1mlError

from helpers import assert_one_line_error, run, trained_and_converted

BDT_RUN = """
name: reg_bdt
seed: 5
data: {{events: {events}, signals: [Ato4l]}}
model: {{kind: bdt, n_estimators: 6, max_depth: 3}}
evaluation: {{rates_khz: [2000, 4000]}}
verify: {{auc_tolerance: 0.2, efficiency_tolerance: 0.4, vhdl_events: 20}}
"""


@pytest.fixture(scope="module")
def delivery(small_events, tmp_path_factory) -> Path:
    """One real delivery of the module: a small BDT trained, converted, verified and delivered (--no-synthesis)."""
    from l1ml.deliver.package import DeliverOptions, deliver
    from l1ml.synth.db import JobDB
    from l1ml.verify.run import VerifyOptions, verify

    root = tmp_path_factory.mktemp("reg")
    run_dir = trained_and_converted(BDT_RUN.format(events=small_events), root)
    assert verify(run_dir, VerifyOptions(min_events=1000), log=lambda m: None).passed
    return deliver(run_dir, DeliverOptions("0.1.0", root / "deliveries", synthesis=False, test_events=50),
                   db=JobDB(root / "state"), log=lambda m: None).path


def variant(base: Path, root: Path, model: str, version: str, passed: bool = True) -> Path:
    """A copy of the delivery `base` as `model` `version` (its manifest's verify `passed` as given), its manifest,
    archive and record written again by the code that writes every delivery's."""
    from l1ml.deliver.manifest import MANIFEST, make_record, read_manifest, record_path
    from l1ml.deliver.package import _tar, _write_manifest

    folder = root / model / version
    shutil.copytree(base, folder)
    data = read_manifest(base).model_dump(mode="json")
    content = {k: v for k, v in data.items() if k not in ("format", "files", "build_products")}
    content.update(model=model, version=version, verify={**data["verify"], "passed": passed})
    (folder / MANIFEST).unlink()
    manifest = _write_manifest(folder, content)
    archive = folder.parent / f"{version}.tar.gz"
    _tar(folder, version, archive, manifest.created)
    make_record(manifest, folder / MANIFEST, archive).write(record_path(folder.parent, version))
    return folder


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def server(mlflow_server, tracking):
    from l1ml.track.store import client

    return client(mlflow_server)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A local store (SQLite) shared by the module's tests (each uses its own model names), in a runs root."""
    from l1ml.track.store import LOCAL_DIR, client, local_uri

    runs = tmp_path_factory.mktemp("local") / "runs"
    return SimpleNamespace(runs=runs, client=client(local_uri(runs / LOCAL_DIR)))


def tracked(c, package: Path) -> str:
    """The delivery logged as the deliver step logs it (l1ml.track.records): returns the deliver run's id."""
    from l1ml.track.log import log_record
    from l1ml.track.records import for_step

    return [log_record(c, r) for r in for_step("deliver", package)][-1]


def registered(c, base: Path, root: Path, model: str, versions=("0.1.0",), passed=True, track=True) -> list:
    from l1ml.track.registry import register_delivery

    out = []
    for v in versions:
        package = variant(base, root, model, v, passed)
        out.append(register_delivery(c, package, tracked(c, package) if track else None))
    return out


# ------------------------------------------------------------------------------------------------ registering


def test_register_a_delivery_tags_equal_its_manifest_and_idempotent(server, delivery, tmp_path):
    from l1ml.deliver.manifest import read_manifest, read_record
    from l1ml.track.registry import register_delivery

    model = unique("reg_tags")
    package = variant(delivery, tmp_path, model, "0.1.0")
    run_id = tracked(server, package)
    mv = register_delivery(server, package, run_id)
    manifest, record = read_manifest(package), read_record(tmp_path / model / "0.1.0.record.json")
    thresholds = json.loads((package / "thresholds.json").read_text())
    tags = mv.tags
    assert (mv.name, str(mv.version), mv.run_id) == (model, "1", run_id)
    assert mv.source == f"runs:/{run_id}/archive/0.1.0.tar.gz"
    assert tags["l1ml.delivery_version"] == manifest.version == "0.1.0"
    assert tags["l1ml.kind"] == manifest.kind == "emulator-only"
    assert tags["l1ml.verify_passed"] == "true" and manifest.verify["passed"] is True
    verify = json.loads(tags["l1ml.verify"])
    assert verify["passed"] is True and verify["events"] == manifest.verify["events"]
    assert verify["checks"] == {c["name"].split(" (")[0]: {"passed": c["passed"], "mismatches": c["mismatches"],
                                                           "events": c["events"]} for c in manifest.verify["checks"]}
    assert json.loads(tags["l1ml.synthesis"]) == {"none": manifest.synthesis["none"]}
    assert json.loads(tags["l1ml.thresholds"]) == {
        "score_type": thresholds["score_type"],
        "thresholds": [{"rate_khz": t["rate_khz"], "hex": t["hex"], "code": t["code"], "value": t["threshold"]}
                       for t in thresholds["thresholds"]]}
    assert [t["rate_khz"] for t in json.loads(tags["l1ml.thresholds"])["thresholds"]] == [2000.0, 4000.0]
    assert tags["l1ml.archive_sha256"] == record.archive_sha256
    assert tags["l1ml.archive_path"] == str((tmp_path / model / "0.1.0.tar.gz").resolve())
    assert tags["l1ml.package_dir"] == str(package.resolve())
    assert tags["l1ml.run_dir"] == manifest.lineage["run"]["path"] and Path(tags["l1ml.run_dir"]).is_dir()
    assert tags["l1ml.run"] == f"{model}/{manifest.lineage['run']['id']}"
    deliver_run = server.get_run(run_id)
    assert tags["l1ml.deliver_run_id"] == run_id
    assert tags["l1ml.mlflow_run_id"] == deliver_run.data.tags["mlflow.parentRunId"]
    assert server.get_run(tags["l1ml.mlflow_run_id"]).data.tags["l1ml.step"] == "train"
    # the version's source is the archive the deliver run holds: downloaded, it is the delivered archive
    archive = Path(server.download_artifacts(run_id, "archive/0.1.0.tar.gz", str(tmp_path)))
    assert archive.read_bytes() == (tmp_path / model / "0.1.0.tar.gz").read_bytes()
    # registered again (by the deliver hook, by `l1ml track sync`, without the run): the same version
    assert str(register_delivery(server, package, run_id).version) == "1"
    assert str(register_delivery(server, package, None).version) == "1"
    assert [str(v.version) for v in server.search_model_versions(f"name = '{model}'")] == ["1"]
    described = server.get_registered_model(model)
    assert "l1ml" in described.description and described.aliases == {}


def test_register_without_a_tracked_run_in_a_local_store(local, delivery, tmp_path):
    """A delivery never tracked (tracking off when it was made) registers from its archive's file in a local store; one
    whose deliver run is in the store is found by its archive's SHA-256."""
    from l1ml.track.registry import register_delivery

    model = unique("reg_local")
    untracked = variant(delivery, tmp_path, model, "0.1.0")
    mv = register_delivery(local.client, untracked, None)
    assert mv.source == (tmp_path / model / "0.1.0.tar.gz").resolve().as_uri() and mv.run_id is None
    assert "l1ml.mlflow_run_id" not in mv.tags and mv.tags["l1ml.verify_passed"] == "true"
    # a delivery of the run's own model name, tracked: its deliver run is found without being named
    found_root = tmp_path / "found"
    package = variant(delivery, found_root, "reg_bdt", "0.5.0")
    run_id = tracked(local.client, package)
    mv = register_delivery(local.client, package, None)
    assert mv.run_id == run_id and mv.source == f"runs:/{run_id}/archive/{package.name}.tar.gz"


def test_register_refuses_a_changed_archive(local, delivery, tmp_path):
    from l1ml.track.registry import register_delivery

    package = variant(delivery, tmp_path, unique("reg_bad"), "0.1.0")
    archive = package.parent / "0.1.0.tar.gz"
    archive.write_bytes(archive.read_bytes() + b"\0")
    with pytest.raises(L1mlError, match="not the archive delivered: its SHA-256 differs from 0.1.0.record.json"):
        register_delivery(local.client, package, None)


# ------------------------------------------------------------------------------------------------ resolving


def test_resolve_by_alias_number_delivery_version_and_latest(local, delivery, tmp_path):
    from l1ml.track.registry import promote, resolve

    model = unique("reg_resolve")
    v1, v2, v3 = registered(local.client, delivery, tmp_path, model, ("0.1.0", "0.2.0", "1.0.0"), track=False)
    promote(local.client, model, "0.2.0", alias="production")
    promote(local.client, model, 3, alias="staging")
    assert str(resolve(local.client, f"{model}@production").version) == "2"
    assert str(resolve(local.client, f"{model}@staging").version) == "3"
    assert str(resolve(local.client, f"{model}@1").version) == "1"
    assert str(resolve(local.client, f"{model}@0.2.0").version) == "2"
    assert str(resolve(local.client, model).version) == "3"
    assert resolve(local.client, f"{model}@1.0.0").tags["l1ml.delivery_version"] == "1.0.0"

    with pytest.raises(L1mlError) as unknown:
        resolve(local.client, "no_such_model@production")
    assert "key 'model', value 'no_such_model': no registered model of this name" in str(unknown.value)
    assert model in str(unknown.value)
    with pytest.raises(L1mlError) as alias:
        resolve(local.client, f"{model}@champion")
    assert str(alias.value) == (f"key 'alias', value 'champion': model {model} has no such alias; its aliases: "
                                "production -> 2, staging -> 3")
    with pytest.raises(L1mlError) as version:
        resolve(local.client, f"{model}@7")
    assert str(version.value) == (f"key 'version', value '7': model {model} has no such version; its versions: "
                                  "1 (0.1.0), 2 (0.2.0), 3 (1.0.0)")
    with pytest.raises(L1mlError, match="value '0.3.0': model .* has no such version"):
        resolve(local.client, f"{model}@0.3.0")
    for bad in ("v1", "latest", "12"):
        with pytest.raises(L1mlError, match=f"key 'alias', value '{bad}': an alias is"):
            promote(local.client, model, 1, alias=bad)


# ------------------------------------------------------------------------------------------------ promotion and history


def test_promotions_are_recorded_and_answer_which_version_held_the_alias(server, delivery, tmp_path):
    from l1ml.track.registry import at, during, history, promote

    model = unique("reg_hist")
    registered(server, delivery, tmp_path, model, ("0.1.0", "0.2.0"))
    first = promote(server, model, "1", note="first physics run")
    second = promote(server, model, "0.2.0", note="new pile-up")
    t1, t2 = dt.datetime.fromisoformat(first["time"]), dt.datetime.fromisoformat(second["time"])
    assert t1 < t2 and t1.utcoffset() == dt.timedelta(0)
    assert (first["version"], first["delivery_version"], first["previous_version"], first["unchanged"]) == ("1", "0.1.0", None, False)
    assert (second["version"], second["delivery_version"], second["previous_version"]) == ("2", "0.2.0", "1")
    assert second["previous_delivery_version"] == "0.1.0" and second["note"] == "new pile-up" and second["user"]
    assert server.get_model_version_by_alias(model, "production").version == "2"

    rows = history(server, model)
    assert [(r["seq"], r["version"], r["alias"], r["note"], r["until"]) for r in rows] == [
        (1, "1", "production", "first physics run", second["time"]), (2, "2", "production", "new pile-up", None)]
    assert [r["time"] for r in rows] == [first["time"], second["time"]]

    assert at(server, model, t1 - dt.timedelta(microseconds=1)) is None
    assert at(server, model, t1)["version"] == "1"
    assert at(server, model, t1 + (t2 - t1) / 2)["version"] == "1"
    assert at(server, model, t2)["version"] == "2"
    assert at(server, model, t2 + dt.timedelta(days=400))["version"] == "2"
    assert at(server, model, (t1 + (t2 - t1) / 2).replace(tzinfo=None))["version"] == "1", "a naive time is UTC"
    assert at(server, model, t2, alias="staging") is None
    day = t1.replace(hour=0, minute=0, second=0, microsecond=0)
    assert [r["version"] for r in during(server, model, day, day + dt.timedelta(days=2))] == ["1", "2"]
    assert [r["version"] for r in during(server, model, t2, t2 + dt.timedelta(days=1))] == ["2"]

    again = promote(server, model, "2")
    assert again["unchanged"] is True and again["seq"] == 2 and len(history(server, model)) == 2
    # the history lives in the registry: a new client (another machine) reads the same
    from l1ml.track.store import client

    assert history(client(server.tracking_uri), model) == rows


def test_a_damaged_history_record_is_a_named_error(local, delivery, tmp_path):
    from l1ml.track.registry import history, promote

    model = unique("reg_damaged")
    registered(local.client, delivery, tmp_path, model, track=False)
    promote(local.client, model, "1")
    key = "l1ml.history.production.000001"
    good = local.client.get_registered_model(model).tags[key]
    local.client.set_registered_model_tag(model, key, json.dumps({**json.loads(good), "format": "l1ml-promotion/0"}))
    with pytest.raises(L1mlError, match=f"registered model {model}, tag {key}, key 'format': format 'l1ml-promotion/0', "
                                         "expected 'l1ml-promotion/1'"):
        history(local.client, model)
    local.client.set_registered_model_tag(model, key, json.dumps({**json.loads(good), "time": "yesterday"}))
    with pytest.raises(L1mlError, match=f"tag {key}, key 'time': damaged"):
        history(local.client, model)
    local.client.set_registered_model_tag(model, key, json.dumps({**json.loads(good), "seq": 4}))
    with pytest.raises(L1mlError, match="number 4: not the tag it is kept in"):
        history(local.client, model)


def test_promotion_refused_when_not_verified(server, delivery, tmp_path):
    from l1ml.track.registry import PromotionRefused, history, promote

    model = unique("reg_unverified")
    (mv,) = registered(server, delivery, tmp_path, model, passed=False)
    assert mv.tags["l1ml.verify_passed"] == "false" and json.loads(mv.tags["l1ml.verify"])["passed"] is False
    with pytest.raises(PromotionRefused) as refused:
        promote(server, model, "0.1.0")
    assert str(refused.value) == (f"promotion of {model} version 1 (0.1.0) to 'production' refused: its verify did not "
                                  "pass (tag l1ml.verify_passed = 'false')")
    assert server.get_registered_model(model).aliases == {} and history(server, model) == []


def test_promotion_refused_when_the_archive_changed_or_is_missing(server, delivery, tmp_path):
    from l1ml.track.registry import PromotionRefused, promote

    model = unique("reg_archive")
    v1, v2 = registered(server, delivery, tmp_path, model, ("0.1.0", "0.2.0"))
    promote(server, model, "1")
    archive = Path(v2.tags["l1ml.archive_path"])
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 1
    archive.write_bytes(bytes(data))
    from l1ml.runs import sha256_file

    with pytest.raises(PromotionRefused) as changed:
        promote(server, model, "2")
    assert str(changed.value) == (f"promotion of {model} version 2 (0.2.0) to 'production' refused: its archive {archive} "
                                  f"has changed: SHA-256 {sha256_file(archive)}, registered {v2.tags['l1ml.archive_sha256']}")
    archive.unlink()
    with pytest.raises(PromotionRefused, match=f"its archive {archive} is missing: it cannot be checked against its "
                                               f"SHA-256 {v2.tags['l1ml.archive_sha256']}"):
        promote(server, model, "0.2.0")
    assert server.get_model_version_by_alias(model, "production").version == "1"
    # every reason at once
    model = unique("reg_both")
    (mv,) = registered(server, delivery, tmp_path, model, passed=False)
    Path(mv.tags["l1ml.archive_path"]).unlink()
    with pytest.raises(PromotionRefused) as both:
        promote(server, model, "1")
    assert "its verify did not pass" in str(both.value) and "is missing" in str(both.value)


# ------------------------------------------------------------------------------------------------ the CLI


@pytest.fixture
def l1ml(capsys, monkeypatch):
    """`l1ml ARGS` in this process, through its `main` (the one-line errors and exit statuses a user gets): a process
    per command would import MLflow each time, seconds per call."""
    from l1ml.cli import main

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")

    def invoke(*args):
        capsys.readouterr()
        handler = signal.getsignal(signal.SIGTERM)
        try:
            with pytest.raises(SystemExit) as done:
                main([str(a) for a in args])
        finally:
            signal.signal(signal.SIGTERM, handler)
        out = capsys.readouterr()
        return SimpleNamespace(returncode=done.value.code, stdout=out.out, stderr=out.err)

    return invoke


def test_models_cli_list_show_promote_history(l1ml, server, mlflow_server, delivery, tmp_path):
    model = unique("reg_cli")
    v1, v2 = registered(server, delivery, tmp_path, model, ("0.1.0", "0.2.0"))
    uri = ("--tracking-uri", mlflow_server)

    done = l1ml("models", "promote", model, "0.1.0", "--alias", "production", "--note", "first", *uri)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{model} version 1 (delivery 0.1.0) is 'production' since ")
    done = l1ml("models", "promote", model, "2", "--note", "second", *uri)
    assert done.returncode == 0 and done.stdout.strip().endswith("; before: version 1"), done.stdout + done.stderr

    listed = l1ml("models", "list", *uri)
    assert listed.returncode == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["MODEL", "VERSIONS", "LATEST", "DELIVERY", "ALIASES", "CREATED"]
    row = next(r for r in rows if r.startswith(model + " "))
    assert row.split()[:5] == [model, "2", "2", "0.2.0", "production=2"]
    for column in header.split()[1:]:  # aligned: each value starts where its column's title does
        start = header.index(column)
        assert row[start - 2 : start] == "  " and row[start] != " ", (header, row)
    as_json = json.loads(l1ml("models", "list", "--json", *uri).stdout)
    mine = next(m for m in as_json if m["name"] == model)
    assert mine == {"name": model, "versions": 2, "latest_version": "2", "latest_delivery_version": "0.2.0",
                    "aliases": {"production": "2"}, "created": mine["created"]}
    dt.datetime.fromisoformat(mine["created"])

    shown = l1ml("models", "show", f"{model}@production", *uri)
    assert shown.returncode == 0, shown.stderr
    fields = dict(re.match(r"(\S+(?: \S+)*)\s{2,}(.*)$", line).groups() for line in shown.stdout.split("\n\n")[0].splitlines())
    assert fields["version"] == "2" and fields["delivery"] == "0.2.0" and fields["aliases"] == "production"
    assert fields["kind"] == "emulator-only" and fields["verify"].startswith("passed on ")
    assert fields["archive"] == f"{v2.tags['l1ml.archive_path']} (SHA-256 {v2.tags['l1ml.archive_sha256']})"
    assert fields["run folder"] == v2.tags["l1ml.run_dir"] and fields["mlflow run"] == v2.tags["l1ml.mlflow_run_id"]
    thresholds = json.loads(v2.tags["l1ml.thresholds"])["thresholds"]
    assert fields["thresholds"].count(" kHz 0x") == 2 and thresholds[0]["hex"] in fields["thresholds"]
    history_part = shown.stdout.split("\n\n")[1].splitlines()
    assert history_part[0].split() == ["TIME", "ALIAS", "VERSION", "DELIVERY", "PREVIOUS", "UNTIL", "USER", "NOTE"]
    assert [r.split()[1:4] for r in history_part[1:]] == [["production", "1", "0.1.0"], ["production", "2", "0.2.0"]]
    shown_json = json.loads(l1ml("models", "show", f"{model}@1", "--json", *uri).stdout)
    assert (shown_json["version"], shown_json["delivery_version"], shown_json["aliases"]) == ("1", "0.1.0", [])
    assert shown_json["thresholds"] == json.loads(v1.tags["l1ml.thresholds"]) and shown_json["verify_passed"] is True
    assert [h["note"] for h in shown_json["history"]] == ["first", "second"]

    rows = json.loads(l1ml("models", "history", model, "--json", *uri).stdout)
    assert [(r["version"], r["note"]) for r in rows] == [("1", "first"), ("2", "second")]
    table = l1ml("models", "history", model, "--alias", "production", *uri).stdout.splitlines()
    assert len(table) == 3 and table[2].split()[:4] == [rows[1]["time"], "production", "2", "0.2.0"]
    # --at: an ISO time between the promotions, the day (both), and a day before any
    t1, t2 = (dt.datetime.fromisoformat(r["time"]) for r in rows)
    between = (t1 + (t2 - t1) / 2).isoformat()
    at = l1ml("models", "history", model, "--at", between, *uri)
    assert at.returncode == 0 and [r.split()[:2] for r in at.stdout.splitlines()[1:]] == [["1", "0.1.0"]], at.stdout
    assert [r["version"] for r in json.loads(l1ml("models", "history", model, "--at", t1.date().isoformat(), "--json",
                                                   *uri).stdout)] == (["1", "2"] if t1.date() == t2.date() else ["1"])
    before = l1ml("models", "history", model, "--at", "2001-01-01", *uri)
    assert before.returncode == 0 and before.stdout == "" and "no version of" in before.stderr
    assert_one_line_error(l1ml("models", "history", model, "--at", "12 May", *uri), "key '--at', value '12 May'")


def test_models_cli_refusals_and_bad_specs_are_one_line(l1ml, server, mlflow_server, delivery, tmp_path):
    model = unique("reg_cli_bad")
    registered(server, delivery, tmp_path, model, passed=False)
    uri = ("--tracking-uri", mlflow_server)
    # the installed command, once
    assert_one_line_error(run("models", "promote", model, "1", *uri), "refused: its verify did not pass", code=6)
    assert_one_line_error(l1ml("models", "show", "no_such_model", *uri), "no registered model of this name")
    assert_one_line_error(l1ml("models", "show", f"{model}@production", *uri),
                          f"model {model} has no such alias; its aliases: none")
    assert_one_line_error(l1ml("models", "promote", model, "9", *uri), "its versions: 1 (0.1.0)")
    assert_one_line_error(l1ml("models", "history", "no_such_model", *uri), "key 'model', value 'no_such_model'")


def test_models_cli_on_the_local_store_of_a_runs_root(l1ml, local, delivery, tmp_path):
    empty = l1ml("models", "list", "--runs", tmp_path / "nothing")
    assert empty.returncode == 0 and empty.stdout == "" and "no registered models" in empty.stderr
    assert not (tmp_path / "nothing").exists(), "listing makes no store"
    assert_one_line_error(l1ml("models", "show", "x", "--runs", tmp_path / "nothing"), "no tracking store here")
    model = unique("reg_cli_local")
    registered(local.client, delivery, tmp_path, model, track=False)
    done = l1ml("models", "promote", model, "0.1.0", "--runs", local.runs)
    assert done.returncode == 0, done.stderr
    assert json.loads(l1ml("models", "show", model, "--json", "--runs", local.runs).stdout)["aliases"] == ["production"]
