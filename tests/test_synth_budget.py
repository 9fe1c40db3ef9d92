"""A finished HLS job is compared with its hw target's budgets; where it cannot be, the result says why, and
`l1ml synth status` / `synth report` show it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from helpers import SHARED

REPORT = SHARED / "fixtures" / "hls-reports" / "nrp__myproject_csynth.xml"  # 15 cycles at 5 ns: 75 ns
pytestmark = pytest.mark.skipif(not REPORT.is_file(), reason=f"fixtures not found at {REPORT}")


def _finished_job(tmp_path, hw_target: str | None, *, report: bool = True) -> dict:
    from l1ml.documents import JobExtra, SynthJob
    from l1ml.synth.runner import finish

    job_dir = tmp_path / "job"
    started = time.time()
    (job_dir / "project" / "prj" / "solution1" / "syn" / "report").mkdir(parents=True)
    if report:
        shutil.copyfile(REPORT, job_dir / "project" / "prj" / "solution1" / "syn" / "report" / "myproject_csynth.xml")
    spec = SynthJob(id="j1", kind="hls", model="m", target=str(tmp_path), project=str(job_dir / "project"), tool="vitis",
                    part="xcvu13p-flga2577-2-e", clock_ns=5, steps=["csynth"], mem_gb=8, time_s=3600, cpus=1,
                    project_hash="0" * 64, extra=JobExtra(hw_target=hw_target))
    result = finish(job_dir, spec, exit_code=0, killed_for=None, peak_bytes=None, started=started)
    result.write(job_dir / "result.json")
    return result.model_dump()


def test_a_known_target_gives_rows_and_a_verdict(tmp_path):
    result = _finished_job(tmp_path, "vu13p")
    assert result["within_budget"] is False and result["budget_unknown"] is None
    assert {row["item"]: row["ok"] for row in result["budget"]}["latency (ns)"] is False  # 75 ns > 50 ns


@pytest.mark.parametrize("hw_target, report, reason", [
    (None, True, "the firmware project records no hw target"),
    ("no_such_board", True, "hw target 'no_such_board' cannot be read: value 'no_such_board': unknown hw target"),
    ("vu13p", False, "no C-synthesis report (steps run: csynth)"),
])
def test_no_verdict_says_why(tmp_path, hw_target, report, reason):
    result = _finished_job(tmp_path, hw_target, report=report)
    assert result["within_budget"] is None and result["budget"] == []
    assert result["budget_unknown"].startswith(reason), result["budget_unknown"]


def test_synth_report_shows_why_there_is_no_verdict(tmp_path):
    _finished_job(tmp_path, "no_such_board")
    shown = subprocess.run([sys.executable, "-m", "l1ml", "synth", "report", str(tmp_path / "job")], capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "budget not compared: hw target 'no_such_board' cannot be read" in shown.stdout
