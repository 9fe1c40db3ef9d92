"""The `l1ml` command as a user runs it: help, version, clear one-line errors, and the data commands."""

from __future__ import annotations

import json
import signal
import subprocess
import time

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
