"""The `l1ml` command as a user runs it: help, version, clear one-line errors, and the data commands."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from l1ml import __version__
from l1ml.cli import cli

from helpers import L1ML, ROOT, SMALL_CONFIG, assert_one_line_error, run, write_yaml


def all_commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))


@pytest.mark.parametrize("path", [(), *all_commands(cli)], ids=lambda p: " ".join(p) or "l1ml")
def test_help_for_every_command(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_version():
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_bad_config_one_line(tmp_path):
    cfg = write_yaml(tmp_path / "bad.yaml", SMALL_CONFIG.read_text().replace("seed: 7", "sed: 7\nseed: 7"))
    assert_one_line_error(run("data", "generate", cfg), str(cfg), "key 'sed'", "unknown key")
    assert_one_line_error(run("config", "check", "data", cfg), str(cfg), "key 'sed'")


def test_bad_value_one_line(tmp_path):
    cfg = write_yaml(tmp_path / "bad.yaml", SMALL_CONFIG.read_text().replace("sqrt_s_tev: 13.6", "sqrt_s_tev: lots"))
    assert_one_line_error(run("data", "generate", cfg), str(cfg), "key 'sqrt_s_tev'", "'lots'")


def test_missing_and_bad_files(tmp_path):
    assert_one_line_error(run("data", "inspect", tmp_path / "none.h5"), "none.h5", "no such file")
    junk = tmp_path / "junk.h5"
    junk.write_text("hello")
    assert_one_line_error(run("data", "inspect", junk), "junk.h5", "not a readable HDF5 file")
    assert_one_line_error(run("hw", "show", "vu99p"), "'vu99p'", "known targets")


def test_wrong_invocation_is_a_usage_error():
    r = run("data", "generat")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "No such command" in r.stderr
    r = run("data", "generate", "--jobs", "0", "x.yaml")
    assert r.returncode == 2 and "--jobs" in r.stderr and "Traceback" not in r.stderr


def test_debug_shows_traceback(tmp_path):
    r = run("--debug", "data", "inspect", tmp_path / "none.h5")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_config_check_and_schema():
    r = run("config", "check", "data", SMALL_CONFIG)
    assert r.returncode == 0 and "valid data config" in r.stderr and "egamma:" in r.stdout
    r = run("config", "schema", "hw")
    assert r.returncode == 0 and json.loads(r.stdout)["title"] == "HwTarget"


def test_hw_commands():
    r = run("hw", "list")
    assert r.returncode == 0 and "xcvu9p-flga2104-2L-e" in r.stdout and "xc7vx690tffg1927-2" in r.stdout
    r = run("hw", "show", ROOT / "hw" / "vu13p.yaml")
    assert r.returncode == 0 and "dsp: 12288" in r.stdout


def test_generate_via_cli_prints_file_last_and_reuses(tmp_path):
    cfg = write_yaml(tmp_path / "t.yaml", "name: t\nseed: 3\nsamples:\n  s:\n    events: 10\n"
                                            "    processes: [{process: Z_ll}]\n")
    out = tmp_path / "t.h5"
    r = run("data", "generate", cfg, "--out", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(out) and out.exists()
    assert "events/s" in r.stderr and (tmp_path / "t.manifest.json").exists()
    r = run("data", "generate", cfg, "--out", out, "--quiet")
    assert r.returncode == 0 and r.stdout.strip() == str(out) and r.stderr == ""
    r = run("data", "generate", cfg, "--out", out)
    assert "reusing" in r.stderr


PROGRESS_CONFIG = "name: p\nseed: 3\nchunk_events: 20\nsamples:\n  s:\n    events: 60\n    processes: [{process: minbias}]\n"


def test_progress_off_a_terminal_is_plain_lines(tmp_path):
    """Batch logs, CI and pipes get whole lines of progress on stderr, no carriage returns or escape sequences."""
    out = tmp_path / "p.h5"
    r = run("data", "generate", write_yaml(tmp_path / "p.yaml", PROGRESS_CONFIG), "--out", out, "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == str(out)
    assert "\r" not in r.stderr and "\x1b" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("generating: ")]
    assert lines and lines[-1].startswith("generating: 60/60 events (100%), ") and "events/s, ETA" in lines[-1], r.stderr


def test_progress_on_a_terminal_is_a_progress_bar(tmp_path):
    """On a terminal the progress is drawn by rich on stderr; stdout still carries only the path."""
    import os
    import pty

    master, slave = pty.openpty()
    out = tmp_path / "p.h5"
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    with subprocess.Popen([*L1ML, "data", "generate", str(write_yaml(tmp_path / "p.yaml", PROGRESS_CONFIG)), "--out", str(out),
                           "--jobs", "1"], stdout=subprocess.PIPE, stderr=slave, text=True, env=env) as proc:
        os.close(slave)
        terminal = _read_all(master)
        stdout = proc.stdout.read()
    assert proc.returncode == 0, terminal
    assert stdout == f"{out}\n"
    assert "\x1b[" in terminal and "generating" in terminal and "60/60" in terminal and "manifest:" in terminal, terminal


def _read_all(fd: int) -> str:
    import os

    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


BDT_RUN = """
name: cli_bdt
seed: 4
data: {{events: {events}, signals: [Ato4l, LQ_btau]}}
model: {{kind: bdt, n_estimators: 6, max_depth: 3}}
evaluation: {{rates_khz: [2000, 4000]}}
verify: {{auc_tolerance: 0.2, efficiency_tolerance: 0.4, vhdl_events: 40}}
"""


def test_train_and_verify_say_what_they_measured_and_where_the_plots_are(small_events, tmp_path):
    trained = run("train", write_yaml(tmp_path / "bdt.yaml", BDT_RUN.format(events=small_events)), "--runs", tmp_path / "runs")
    assert trained.returncode == 0, trained.stderr
    run_dir = Path(trained.stdout.splitlines()[-1])
    assert f"plots: {run_dir / 'plots' / 'training.png'}, " in trained.stderr, trained.stderr
    assert run("convert", run_dir).returncode == 0
    verified = run("verify", run_dir, "--min-events", "3000")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines()[-1] == str(run_dir / "verify" / "report.json")
    assert "\r" not in verified.stderr and re.search(r"^C-simulation: (\d+)/\1 events \(100%\)", verified.stderr, re.M)
    report = json.loads((run_dir / "verify" / "report.json").read_text())
    physics = next(c for c in report["checks"] if c["name"].startswith("physics"))["signals"]["Ato4l"]
    rates = "".join(f"{f'eff @ {r} kHz':>18}" for r in ("2000", "4000"))
    values = f"{physics['auc_firmware']:.3f} / {physics['auc_float']:.3f}"
    assert f"  {'signal':<12}{'AUC':>16}{rates}\n  {'Ato4l':<12}{values:>16}" in verified.stderr, verified.stderr
    assert f"plots: {run_dir / 'verify' / 'firmware_vs_float.png'}, {run_dir / 'verify' / 'residuals.png'}" in verified.stderr


def test_default_output_is_a_run_directory(tmp_path):
    cfg = write_yaml(tmp_path / "t.yaml", "name: t\nseed: 3\nsamples:\n  s:\n    events: 5\n"
                                            "    processes: [{process: Z_ll}]\n")
    r = run("data", "generate", cfg, "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    events = tmp_path / r.stdout.strip()
    assert events.name == "events.h5" and events.parent.parent == tmp_path / "runs" / "data" / "t"
    manifest = json.loads((events.parent / "manifest.json").read_text())
    for key in ("config", "tools", "l1ml_git", "seed", "command", "outputs", "samples"):
        assert key in manifest
    assert manifest["config"]["as_given"] == cfg.read_text() and manifest["seed"] == 3
    assert manifest["config"]["resolved"]["l1"]["jet"]["window"] == 9
    assert manifest["outputs"]["events"]["sha256"] and manifest["tools"]["pythia8mc"] == "8.317.2"


def test_inspect_writes_plots_and_summary(small_events, tmp_path):
    out = tmp_path / "inspect"
    r = run("data", "inspect", small_events, "--out", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(out)
    assert "sample background: 400 events" in r.stdout and "W_lnu 200 (50.0%)" in r.stdout
    for name in ("multiplicity", "pt", "eta", "phi"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["background"]["events"] == 400
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["events"]["path"] == str(small_events)


def test_inspect_writes_nothing_unless_asked(small_events, tmp_path):
    """Data areas are often read-only and shared: without --out, inspect prints the summary and writes nowhere."""
    import shutil

    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    work.mkdir()
    events = Path(shutil.copy(small_events, data / "events.h5"))
    r = run("data", "inspect", events, cwd=work)
    assert r.returncode == 0, r.stderr
    assert "sample background: 400 events" in r.stdout and "--out" in r.stderr
    assert [p.name for p in data.iterdir()] == ["events.h5"] and not list(work.iterdir())


def test_inspect_clip_reports_counts(tmp_path):
    import h5py
    import numpy as np

    p = np.zeros((3, 19, 4))
    p[:, 0] = [10, 0, 0, 1]
    p[1, 9] = [-4.0, 0.1, 0.1, 4]
    path = tmp_path / "neg.h5"
    with h5py.File(path, "w") as f:
        f["Particles"] = p
    assert_one_line_error(run("data", "inspect", path), "negative pT in 1 events", "--clip")
    r = run("data", "inspect", path, "--clip", "--out", tmp_path / "i")
    assert r.returncode == 0 and "clipped: 1 values with negative pT" in r.stdout



@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_generate_leaves_nothing_behind(tmp_path, sig, code):
    cfg = write_yaml(tmp_path / "t.yaml", "name: t\nseed: 3\nchunk_events: 50\nsamples:\n  s:\n    events: 5000\n"
                                            "    processes: [{process: QCD}]\n")
    out = tmp_path / "t.h5"
    with subprocess.Popen([*L1ML, "data", "generate", str(cfg), "--out", str(out)], stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 120
        # text mode reads the progress line's carriage returns as line ends
        while "events/s" not in (line := proc.stderr.readline()) and time.monotonic() < deadline:
            assert line, "generate ended before showing progress"
        proc.send_signal(sig)
        t0 = time.monotonic()
        assert proc.wait(timeout=60) == code
        assert time.monotonic() - t0 < 10, "workers were not stopped promptly"
        assert "Traceback" not in proc.stderr.read()
    assert not out.exists() and not list(tmp_path.glob(".t.h5.tmp-*"))


def test_export_then_inspect_plain_adc2021_file(small_events, tmp_path):
    out = tmp_path / "Ato4l.h5"
    r = run("data", "export", small_events, "--sample", "Ato4l", "--out", out)
    assert r.returncode == 0 and r.stdout.strip() == str(out), r.stderr
    r = run("data", "inspect", out, "--out", tmp_path / "i")
    assert r.returncode == 0 and "sample Ato4l: 100 events" in r.stdout
    assert_one_line_error(run("data", "export", small_events, "--out", tmp_path / "y.h5"), "several samples")
