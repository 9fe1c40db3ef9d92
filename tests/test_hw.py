"""FPGA targets in hw/."""

from __future__ import annotations

import re

import pytest

from l1ml.config.hw import hw_dir, list_targets, load_target
from l1ml.errors import L1mlError

from helpers import SHARED

PARTS = {"vu9p": "xcvu9p-flga2104-2L-e", "vu13p": "xcvu13p-flga2577-2-e", "vx690t": "xc7vx690tffg1927-2"}


def test_required_targets_exist():
    assert set(PARTS) <= set(list_targets())
    for name, part in PARTS.items():
        t = load_target(name)
        assert t.part == part
        assert t.latency_budget_ns > 0 and t.default_clock_ns == t.clock_periods_ns[0]
        assert t.resources.bram_18k == 2 * t.resources.bram_36k


def test_datasheet_named_in_each_file():
    for name in list_targets():
        t = load_target(name)
        assert re.search(r"DS\d+", t.datasheet), name


def test_vu13p_matches_hls_report_of_same_die():
    """The Alveo U250 carries the VU13P die: its csynth.xml lists the same available resources."""
    xml = SHARED / "fixtures" / "hls-reports" / "nrp__myproject_csynth.xml"
    if not xml.exists():
        pytest.skip("../shared/fixtures not present")
    text = xml.read_text()
    assert "xcu250" in text
    avail = text[text.index("<AvailableResources>"):text.index("</AvailableResources>")]
    got = {k: int(v) for k, v in re.findall(r"<(\w+)>(\d+)</", avail)}
    r = load_target("vu13p").resources
    assert (got["LUT"], got["FF"], got["DSP"], got["BRAM_18K"], got["URAM"]) == (r.lut, r.ff, r.dsp, r.bram_18k, r.uram)


def test_unknown_target_lists_known():
    with pytest.raises(L1mlError, match="known targets: .*vu9p"):
        load_target("vu99p")


def test_target_by_path_validates(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text((hw_dir() / "vu9p.yaml").read_text().replace("dsp: 6840", "dsp: -1"))
    with pytest.raises(L1mlError, match=r"resources\.dsp"):
        load_target(bad)
