"""The report parsers reproduce the values read by eye off real tool reports (../shared/fixtures/PROVENANCE.md)."""

from __future__ import annotations

import json

import pytest

from l1ml.errors import L1mlError
from l1ml.synth.reports import parse_report

from helpers import SHARED

REPORTS = SHARED / "fixtures" / "hls-reports"
pytestmark = pytest.mark.skipif(not REPORTS.is_dir(), reason=f"fixtures not found at {REPORTS}")

# id: tool, version, part, (target, estimated, uncertainty), pipeline, (latency best, worst), (interval min, max),
#     {resource: (used, available)} -- the PROVENANCE.md table of C-synthesis reports
CSYNTH = {
    "hector_m1": ("Vivado HLS", "2019.2", "xcu250-figd2104-2L-e", (5.00, 4.357, 0.62), "function", (13, 13), (1, 1),
                  {"bram_18k": (4, 5376), "dsp": (1450, 12288), "ff": (10961, 3456000), "lut": (84942, 1728000), "uram": (0, 1280)}),
    "nrp": ("Vitis HLS", "2022.2", "xcu250-figd2104-2L-e", (5.00, 3.636, 1.35), "yes", (15, 15), (1, 1),
            {"bram_18k": (8, 5376), "dsp": (2557, 12288), "ff": (24233, 3456000), "lut": (116694, 1728000), "uram": (0, 1280)}),
    "seanlipps": ("Vitis HLS", "2024.1", "xcu250-figd2104-2L-e", (5.00, 3.530, 1.35), "dataflow", (395, 395), (390, 390),
                  {"bram_18k": (29, 5376), "dsp": (467, 12288), "ff": (7123, 3456000), "lut": (17966, 1728000), "uram": (0, 1280)}),
    "chirui_ae": ("Vivado HLS", "2019.2.1", "xc7z020-clg400-1", (5.00, 4.429, 0.62), "dataflow", (96014, 96165), (4625, 95949),
                  {"bram_18k": (285, 280), "dsp": (118, 220), "ff": (51414, 106400), "lut": (33365, 53200), "uram": (0, 0)}),
    "pominiq_slp": ("Vivado HLS", "2020.1", "xc7z020-clg400-1", (25.00, 20.472, 3.12), "function", (13, 13), (6, 6),
                    {"bram_18k": (3, 280), "dsp": (31, 220), "ff": (2994, 106400), "lut": (6931, 53200), "uram": (0, 0)}),
    "thaarres": ("Vivado HLS", "2020.1", "xczu9eg-ffvb1156-2-e", (5.00, 4.218, 0.62), "function", (5, 5), (1, 1),
                 {"bram_18k": (1, 1824), "dsp": (0, 2520), "ff": (4561, 548160), "lut": (59561, 274080), "uram": (0, 0)}),
    "chirui_face": ("Vivado HLS", "2019.2", "xcku115-flvb2104-2-i", (5.00, 4.375, 0.62), "dataflow", (1013755, 1393659),
                    (948226, 1328130), {"bram_18k": (77, 4320), "dsp": (197, 5520), "ff": (15469, 1326720), "lut": (25598, 663360),
                                        "uram": (0, 0)}),
    "spallen": ("Vitis HLS", "2023.1", "xczu49dr-ffvf1760-2-e", (5.00, 3.649, 1.35), "dataflow", (695, 695), (578, 578),
                {"bram_18k": (332, 2160), "dsp": (29, 4272), "ff": (65881, 850560), "lut": (339116, 425280), "uram": (0, 80)}),
    "magiprince": ("Vitis HLS", "2023.1", "xc7z030-sbv485-3", (5.00, 4.375, 0.62), "dataflow", (166647, 166647), (166638, 166638),
                   {"bram_18k": (2381, 530), "dsp": (635, 400), "ff": (332677, 157200), "lut": (494447, 78600), "uram": (0, 0)}),
}

CASES = [(name, suffix) for name in CSYNTH for suffix in (".xml", ".rpt")
         if (REPORTS / f"{name}__myproject_csynth{suffix}").is_file() or not REPORTS.is_dir()]


@pytest.mark.parametrize("name,suffix", CASES)
def test_csynth_reports(name, suffix):
    tool, version, part, clock, pipeline, latency, interval, resources = CSYNTH[name]
    r = parse_report(REPORTS / f"{name}__myproject_csynth{suffix}")
    assert (r.tool, r.version, r.part, r.top) == (tool, version, part, "myproject")
    assert (r.clock_target_ns, r.clock_estimated_ns, r.clock_uncertainty_ns) == pytest.approx(clock)
    assert r.pipeline_type == pipeline
    assert (r.latency_best, r.latency_worst) == latency and (r.interval_min, r.interval_max) == interval
    assert r.latency_worst_ns == pytest.approx(latency[1] * clock[0])
    assert {k: (u.used, u.available) for k, u in r.resources.items()} == resources


# file: Vivado, device, state, {resource: (used, available)}, (RAMB36, RAMB18)
UTILIZATION = {
    "pominiq_slp__vivado_synth.rpt": ("2020.1", "7z020clg400-1", "Synthesized",
                                      {"lut": (2796, 53200), "ff": (2848, 106400), "bram_tile": (1.5, 140), "dsp": (31, 220)}, (0, 3)),
    "thaarres__vivado_synth.rpt": ("2020.1", "xczu9egffvb1156-2", "Synthesized",
                                   {"lut": (31277, 274080), "ff": (4555, 548160), "bram_tile": (0.5, 912), "dsp": (0, 2520)}, (0, 1)),
    "seanlipps__vivado_synth.rpt": ("2024.1", "xcu250-figd2104-2L-e", "Optimized",
                                    {"lut": (8565, 1728000), "ff": (4864, 3456000), "bram_tile": (12, 2688), "uram": (0, 1280),
                                     "dsp": (467, 12288)}, (10, 4)),
    "seanlipps__vivado_utilization.rpt": ("2024.1", "xcu250-figd2104-2L-e", "Routed",
                                          {"lut": (7722, 1728000), "ff": (4864, 3456000), "bram_tile": (12, 2688),
                                           "uram": (0, 1280), "dsp": (467, 12288)}, (10, 4)),
    "hector_prunedcnn__vivado_synth.rpt": ("2020.1", "xcu250figd2104-2L", "Synthesized",
                                           {"lut": (123948, 1728000), "ff": (43435, 3456000), "bram_tile": (42, 2688),
                                            "uram": (0, 1280), "dsp": (5386, 12288)}, (0, 84)),
    "hector_m3pynq__design_1_wrapper_utilization_placed.rpt": ("2019.2", "7z020clg400-1", "Fully Placed",
                                                               {"lut": (19879, 53200), "ff": (20767, 106400),
                                                                "bram_tile": (7, 140), "dsp": (9, 220)}, (4, 6)),
}


@pytest.mark.parametrize("name", sorted(UTILIZATION))
def test_vivado_utilization_reports(name):
    version, device, state, resources, (ramb36, ramb18) = UTILIZATION[name]
    r = parse_report(REPORTS / name)
    assert (r.version, r.device, r.design_state) == (version, device, state)
    assert {k: (u.used, u.available) for k, u in r.resources.items()} == resources
    assert (r.ramb36, r.ramb18) == (ramb36, ramb18)


def test_other_files_are_refused_by_name(tmp_path):
    with pytest.raises(L1mlError, match="not a C-synthesis or Vivado utilisation report"):
        parse_report(REPORTS / "hector_m3pynq__design_1_wrapper_timing_summary_routed.rpt")
    broken = tmp_path / "myproject_csynth.xml"
    broken.write_text("<profile><ReportVersion><Version>2020.1</Version></ReportVersion></profile>")
    with pytest.raises(L1mlError, match="UserAssignments/Part.*lacks an entry"):
        parse_report(broken)


# how jobs end, judged from real tool logs -------------------------------------------------------------------------


def _log(name):
    return (REPORTS / name).read_text(errors="replace")


def test_oom_killed_hls_log_is_out_of_memory():
    from l1ml.synth.outcome import classify

    # the kernel killed Vivado HLS during co-simulation; the tool itself then exited normally
    outcome = classify(exit_code=0, log=_log("pominiq_oom__vivado_hls.log"), has_report=True, mem_gb=16, time_limit="8h")
    assert (outcome.state, outcome.message) == ("out_of_memory", "out of memory at 16 GB: raise --mem or the ReuseFactor")


def test_zero_exit_without_report_is_a_failure_and_a_full_run_is_done():
    from l1ml.synth.outcome import classify

    empty = classify(exit_code=0, log=_log("nycu_lfads__vitis_hls.log"), has_report=False, mem_gb=8, time_limit="8h")
    assert empty.state == "failed" and "wrote no report" in empty.message
    full = classify(exit_code=0, log=_log("hector_m1__vivado_hls.log"), has_report=True, mem_gb=8, time_limit="8h")
    assert full.state == "done"


def test_slurm_states_and_tool_errors():
    from l1ml.synth.outcome import classify

    kw = {"has_report": False, "mem_gb": 48, "time_limit": "8h"}
    assert classify(exit_code=0, log="", slurm_state="OUT_OF_MEMORY", **kw).state == "out_of_memory"
    assert classify(exit_code=137, log="slurmstepd: error: Exceeded job memory limit", slurm_state="FAILED", **kw).state == \
        "out_of_memory"
    assert classify(exit_code=0, log="", slurm_state="TIMEOUT", **kw).message == "time limit of 8h reached: raise --time"
    assert classify(exit_code=0, log="", slurm_state="NODE_FAIL", **kw).transient
    failed = classify(exit_code=1, log="INFO: x\nERROR: [HLS 214-124] use of undeclared identifier 'foo'\n", **kw)
    assert failed.state == "failed" and "HLS 214-124" in failed.message
    missing = classify(exit_code=127, log="l1ml: no HLS tool: Vitis HLS (vitis_hls, ...) is not on the PATH of node7\n", **kw)
    assert missing.state == "tool_missing" and "node7" in missing.message


def test_memory_and_time_requests():
    from l1ml.synth.outcome import parse_duration, parse_memory

    assert [parse_memory(t) for t in ("48G", "512M", "1.5T", "32")] == [48, 0.5, 1536, 32]
    assert [parse_duration(t) for t in ("8h", "90m", "2:30:00", "45")] == [28800, 5400, 9000, 45]
    with pytest.raises(ValueError, match="not a memory size"):
        parse_memory("lots")


def test_synth_report_cli_prints_a_table_and_json_with_budgets():
    import json
    import subprocess
    import sys

    path = REPORTS / "nrp__myproject_csynth.xml"
    table = subprocess.run([sys.executable, "-m", "l1ml", "synth", "report", str(path), "--target", "vu13p"],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "Vitis HLS 2022.2, xcu250-figd2104-2L-e" in table.stdout and "latency 15-15 cycles (75-75 ns)" in table.stdout
    assert "budget latency (ns)" in table.stdout and "OVER" in table.stdout  # 75 ns > the 50 ns budget
    data = json.loads(subprocess.run([sys.executable, "-m", "l1ml", "synth", "report", str(path), "--json"],
                                     capture_output=True, text=True, timeout=120).stdout)
    assert data["reports"]["file"]["resources"]["dsp"] == {"used": 2557.0, "available": 12288.0}


def test_baseline_comparison_uses_the_stated_tolerances():
    from l1ml.synth.results import against_baseline

    base = parse_report(REPORTS / "nrp__myproject_csynth.xml").to_dict()
    new = json.loads(json.dumps(base))
    new["resources"]["lut"]["used"] *= 1.09  # within 10 %
    new["latency_worst"] = 16  # 15 -> 16 cycles: +6.7 % > 2 %
    rows = {r["item"]: r["ok"] for r in against_baseline(new, base)}
    assert rows["lut"] and not rows["worst latency (cycles)"] and rows["estimated clock (ns)"]
    other = {**base, "version": "2023.1"}
    assert not against_baseline(new, other)[0]["ok"]


def test_synth_report_cli_compares_with_a_baseline():
    import subprocess
    import sys

    nrp, sean = REPORTS / "nrp__myproject_csynth.xml", REPORTS / "seanlipps__myproject_csynth.xml"
    same = subprocess.run([sys.executable, "-m", "l1ml", "synth", "report", str(nrp), "--baseline", str(nrp), "--json"],
                          capture_output=True, text=True, timeout=120)
    rows = json.loads(same.stdout)["baseline"]
    assert rows and all(r["ok"] and r["change"] == 0 for r in rows)
    other = subprocess.run([sys.executable, "-m", "l1ml", "synth", "report", str(nrp), "--baseline", str(sean)],
                           capture_output=True, text=True, timeout=120)
    assert "baseline is Vitis HLS 2024.1 on xcu250-figd2104-2L-e, not comparable" in other.stdout
