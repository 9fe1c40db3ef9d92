"""examples/ci/gitlab-ci.yml: not GitLab, but what its jobs run. Each job's script runs in bash with a stand-in for
`l1ml` that records its arguments and exits with a chosen status; every recorded command is then parsed by the real
l1ml CLI (its options, arguments and their checks), the files it names exist and validate, and the retrain job acts on
each exit status of `l1ml retrain` as the pipeline says (0 promote, 3 keep champion, 4 refused, anything else an
error)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import click
import pytest
import yaml

from l1ml.config.data import DataConfig
from l1ml.config.loader import load_config
from l1ml.config.train import TrainConfig
from l1ml.retrain.run import EXIT_CODES

from helpers import ROOT

CI = ROOT / "examples" / "ci" / "gitlab-ci.yml"
PIPELINE_IID = "417"

#: `l1ml` in the jobs: records argv, leaves behind what the step would (events, a challenger with its comparison) and
#: exits with $STUB_STATUS for `retrain`
STUB = f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["STUB_CALLS"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[:2] == ["data", "generate"]:
    Path(args[args.index("--out") + 1]).write_bytes(b"events")
if args[0] == "retrain" and "--challenger" not in args:
    run = Path(os.environ["RUNS"]) / os.environ["MODEL"] / "20260101-000000-abcdef12"
    (run / "retrain").mkdir(parents=True, exist_ok=True)
    (run / "retrain" / "comparison.txt").write_text("table")
    print(f"retrain {{os.environ['MODEL']}}: challenger {{run}}")
    print("outcome: ...")
if args[0] == "verify":
    (Path(args[1]) / "verify").mkdir(exist_ok=True)
    (Path(args[1]) / "verify" / "report.json").write_text("{{}}")
sys.exit(int(os.environ.get("STUB_STATUS", "0")) if args[0] == "retrain" else 0)
"""


@pytest.fixture(scope="module")
def ci() -> dict:
    return yaml.safe_load(CI.read_text())


@pytest.fixture
def job(ci, tmp_path):
    """Run one job's script as the runner does (one bash, `set -eo pipefail`), from a checkout-like folder."""
    stub = tmp_path / "l1ml"
    stub.write_text(STUB)
    stub.chmod(0o755)
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / "configs").symlink_to(ROOT / "configs")
    calls = tmp_path / "calls.jsonl"
    # the file's variables, unless the schedule (here: the environment) sets them, as in GitLab
    exports = "\n".join(f'export {k}="${{{k}-{v}}}"' for k, v in ci["variables"].items())

    def run(name: str, status: int = 0, **env) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
        calls.unlink(missing_ok=True)
        script = "\n".join([exports, f"export L1ML={stub}", *ci[name]["script"]])
        variables = {"PATH": os.environ["PATH"], "CI_PIPELINE_IID": PIPELINE_IID, "CI_PIPELINE_SOURCE": "schedule",
                     "L1ML_RUNS": str(tmp_path / "runs"), "L1ML_TRACKING_URI": "http://mlflow.example.cern.ch:5000",
                     "STUB_CALLS": str(calls), "STUB_STATUS": str(status), **env}
        r = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=variables, cwd=tmp_path / "checkout",
                           capture_output=True, text=True, timeout=60)
        recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.is_file() else []
        return r, recorded

    run.checkout = tmp_path / "checkout"
    run.runs = tmp_path / "runs"
    return run


def parse(args: list[str]) -> tuple[str, dict]:
    """Parse a command line with the real CLI, down to its command (no group options are used in the pipeline)."""
    from l1ml.cli import cli

    cmd, ctx, rest = cli, click.Context(cli, info_name="l1ml"), list(args)
    while isinstance(cmd, click.Group):
        name, rest = rest[0], rest[1:]
        cmd = cmd.get_command(ctx, name)
        assert cmd is not None, f"no command {name}: {args}"
        ctx = click.Context(cmd, info_name=name, parent=ctx) if isinstance(cmd, click.Group) else cmd.make_context(name, rest, parent=ctx)
    return ctx.command_path, ctx.params


def test_the_pipeline_runs_on_schedules_and_names_real_configs(ci):
    assert ci["workflow"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert ci["stages"] == ["data", "retrain", "check", "promote"]
    v = ci["variables"]
    assert v["MLFLOW_TRACKING_URI"] == "$L1ML_TRACKING_URI"
    _, cfg = load_config(ROOT / v["TRAIN_CONFIG"], TrainConfig)
    assert cfg.name == v["MODEL"] and v["CHAMPION"] == f"{v['MODEL']}@production" and cfg.promotion is not None
    load_config(ROOT / v["DATA_CONFIG"], DataConfig)
    assert (ROOT / "Makefile").read_text().count("\nsetup:") == 1  # before_script: make setup
    needs = {name: job.get("needs", []) for name, job in ci.items() if isinstance(job, dict) and "script" in job}
    assert needs == {"new-data": [], "retrain": ["new-data"], "c-simulation": ["retrain"], "promote": ["retrain", "c-simulation"]}


def test_new_data_are_generated_with_the_pipeline_number_as_seed(job):
    r, calls = job("new-data")
    assert r.returncode == 0, r.stderr
    events = job.runs / "data" / f"new-{PIPELINE_IID}.h5"
    assert calls == [["data", "generate", "new_conditions.yaml", "--out", str(events), "--quiet"]]
    assert parse(calls[0])[0] == "l1ml data generate"
    _, cfg = load_config(job.checkout / "new_conditions.yaml", DataConfig)
    _, original = load_config(ROOT / "configs" / "data" / "demo.yaml", DataConfig)
    assert cfg.seed == int(PIPELINE_IID) and cfg.model_copy(update={"seed": original.seed}) == original
    assert (job.checkout / "data.env").read_text() == f"NEW_EVENTS={events}\n"


def test_new_data_can_be_fetched_and_are_checked_against_their_hash(job, tmp_path):
    source = tmp_path / "published.h5"
    source.write_bytes(b"new events")
    digest = hashlib.sha256(b"new events").hexdigest()
    r, calls = job("new-data", NEW_EVENTS_URL=source.as_uri(), NEW_EVENTS_SHA256=digest)
    assert r.returncode == 0 and calls == [], r.stderr
    assert (job.runs / "data" / f"new-{PIPELINE_IID}.h5").read_bytes() == b"new events"
    r, _ = job("new-data", NEW_EVENTS_URL=source.as_uri(), NEW_EVENTS_SHA256="0" * 64)
    assert r.returncode != 0 and "FAILED" in r.stdout + r.stderr


@pytest.mark.parametrize(("status", "outcome", "job_status"), [(0, "promote", 0), (3, "keep", 0), (4, "refused", 4)])
def test_retrain_acts_on_each_outcome(job, status, outcome, job_status):
    assert EXIT_CODES == {"promote": 0, "keep champion": 3, "refused": 4}
    events = str(job.runs / "data" / "new-417.h5")
    r, calls = job("retrain", status, NEW_EVENTS=events)
    assert r.returncode == job_status, r.stdout + r.stderr
    assert calls == [["retrain", "configs/train/ae_demo.yaml", "--data", events, "--champion", "ae_demo@production",
                      "--runs", str(job.runs)]]
    path, params = parse(calls[0])
    assert path == "l1ml retrain" and params["champion"] == "ae_demo@production" and not params["promote"]
    challenger = job.runs / "ae_demo" / "20260101-000000-abcdef12"
    assert (job.checkout / "retrain.env").read_text() == f"RETRAIN_OUTCOME={outcome}\nCHALLENGER={challenger}\n"
    assert (job.checkout / "comparison" / "comparison.txt").read_text() == "table"
    assert (job.checkout / "retrain.txt").read_text().startswith(f"retrain ae_demo: challenger {challenger}\n")


@pytest.mark.parametrize("status", [1, 70])
def test_an_error_of_retrain_fails_the_job_with_its_status(job, status):
    r, _ = job("retrain", status, NEW_EVENTS="x.h5")
    assert r.returncode == status and f"l1ml retrain failed with exit status {status}" in r.stdout
    assert not (job.checkout / "retrain.env").exists()


def test_without_a_champion_the_option_is_left_out(job):
    r, calls = job("retrain", 0, NEW_EVENTS="x.h5", CHAMPION="")
    assert r.returncode == 0 and "--champion" not in calls[0] and parse(calls[0])[1]["champion"] is None


def test_c_simulation_checks_the_challenger(job):
    challenger = job.runs / "ae_demo" / "run"
    challenger.mkdir(parents=True)
    r, calls = job("c-simulation", CHALLENGER=str(challenger))
    assert r.returncode == 0 and calls == [["verify", str(challenger)]], r.stderr
    assert parse(calls[0])[0] == "l1ml verify" and (job.checkout / "verify" / "report.json").is_file()


@pytest.mark.parametrize(("outcome", "status", "job_status", "called"), [
    ("promote", 0, 0, True), ("promote", 3, 0, True), ("promote", 4, 4, True), ("promote", 1, 1, True),
    ("keep", 0, 0, False), ("refused", 0, 0, False)])
def test_promote_only_what_the_rule_promoted(ci, job, outcome, status, job_status, called):
    assert ci["promote"]["rules"] == [{"if": '$PROMOTE == "manual"', "when": "manual"}, {"when": "on_success"}]
    r, calls = job("promote", status, RETRAIN_OUTCOME=outcome, CHALLENGER="/runs/ae_demo/run")
    assert r.returncode == job_status, r.stdout + r.stderr
    if not called:
        assert calls == []
        return
    path, params = parse(calls[0])
    assert path == "l1ml retrain" and params["promote"] and params["challenger"] == "/runs/ae_demo/run"
    assert params["data"] is None and params["champion"] == "ae_demo@production"
    assert params["deliveries"] == f"{job.runs}/../deliveries"
