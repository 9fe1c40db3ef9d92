"""Open-source logic synthesis for `l1ml estimate`: small Verilog designs whose cells we know through Yosys, conifer's
BDT VHDL through GHDL and Yosys, conifer's estimator, and the errors a user sees. Real tools, no mocks."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from l1ml.errors import L1mlError
from l1ml.estimate.synthesis import (
    CONIFER_VHDL_TOP,
    conifer_estimate,
    conifer_vhdl_sources,
    synthesize_verilog,
    synthesize_vhdl,
    yosys_family,
)

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="Yosys is not installed (Debian package yosys)")
needs_ghdl = pytest.mark.skipif(shutil.which("ghdl") is None, reason="GHDL is not installed (Debian package ghdl)")

# registered inputs and outputs: an adder of W bits has exactly 3*W flip-flops
ADDER = """\
module adder #(parameter W = 8) (input clk, input [W-1:0] a, input [W-1:0] b, output reg [W-1:0] y);
  reg [W-1:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; y <= ra + rb; end
endmodule
"""

# the adder with one more combinational stage between the same registers
TWO_STAGES = """\
module two_stages (input clk, input [7:0] a, input [7:0] b, input [7:0] c, output reg [7:0] y);
  reg [7:0] ra, rb, rc;
  always @(posedge clk) begin ra <= a; rb <= b; rc <= c; y <= ((ra + rb) ^ rc) + ra; end
endmodule
"""

MULTIPLIER = """\
module mul16 (input clk, input signed [15:0] a, input signed [15:0] b, output reg signed [31:0] y);
  reg signed [15:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; y <= ra * rb; end
endmodule
"""

# six registered bits into one registered XOR: one LUT6 between the registers
PARITY6 = """\
module parity6 (input clk, input [5:0] a, output reg y);
  reg [5:0] ra;
  always @(posedge clk) begin ra <= a; y <= ^ra; end
endmodule
"""

# 1024 x 36 bits with a registered read: one 36 Kb block RAM
RAM = """\
module ram (input clk, input we, input [9:0] wa, input [9:0] ra, input [35:0] d, output reg [35:0] q);
  reg [35:0] m [0:1023];
  always @(posedge clk) begin
    if (we) m[wa] <= d;
    q <= m[ra];
  end
endmodule
"""

# a table read with $readmemh from a path relative to the project folder (as da4ml writes them)
ROM = """\
module rom (input clk, input [3:0] a, output reg [3:0] y);
  reg [3:0] m [0:15];
  initial $readmemh("mem/table.mem", m);
  always @(posedge clk) y <= m[a];
endmodule
"""


def _verilog(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.v"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test its own cache of synthesis results: a test that needs Yosys to run gets it to run."""
    monkeypatch.setenv("L1ML_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Synthesise a Verilog design once per module: synth(name, text, top, family) -> SynthFigures."""
    root = tmp_path_factory.mktemp("yosys")
    done = {}

    def run(name, text, top, family="virtexuplus"):
        if (name, family) not in done:
            src = _verilog(root / "src", name, text)
            done[name, family] = synthesize_verilog([src], top, family, root / f"{name}-{family}")
        return done[name, family]

    return run


# families ---------------------------------------------------------------------------------------------------


def test_families_map_to_synth_xilinx_families():
    assert yosys_family("virtexuplus") == "xcup"
    assert yosys_family("kintexuplus") == yosys_family("zynquplus") == "xcup"
    assert yosys_family("virtexu") == yosys_family("kintexu") == "xcu"
    assert yosys_family("virtex7") == yosys_family("kintex7") == yosys_family("artix7") == "xc7"
    assert yosys_family("xc7") == "xc7"


def test_every_hw_target_family_has_a_yosys_family():
    from l1ml.config.hw import list_targets, load_target

    for name in list_targets():
        assert yosys_family(load_target(name).family) in ("xcup", "xcu", "xc7"), name


def test_an_unknown_family_is_refused_by_name(tmp_path):
    with pytest.raises(L1mlError, match="stratix10") as err:
        yosys_family("stratix10")
    assert err.value.key == "family" and "virtexuplus" in str(err.value)
    src = _verilog(tmp_path, "adder", ADDER)
    with pytest.raises(L1mlError, match="'stratix10'"):
        synthesize_verilog([src], "adder", "stratix10", tmp_path / "w")
    assert not (tmp_path / "w").exists(), "refused before anything ran"


# Verilog through Yosys --------------------------------------------------------------------------------------


@needs_yosys
def test_registered_adder_has_exactly_its_flip_flops_and_a_carry_chain(synth, tmp_path):
    f = synth("adder8", ADDER, "adder")
    assert f.ff == 24, f.cells  # ra, rb and y: 3 x 8 bits
    assert f.carry >= 1 and f.dsp == 0 and f.bram_18k == 0, f.cells
    assert 8 <= f.lut <= 24, f.cells  # at least one LUT per sum bit
    assert f.logic_depth is not None and f.logic_depth >= 2  # a LUT, then the carry chain
    assert sum(f.cells.values()) >= f.lut + f.ff + f.carry
    assert re.fullmatch(r"yosys \d+\.\d+\S* synth_xilinx -family xcup", f.tool), f.tool
    assert 0 < f.seconds < 120 and f.log.is_file()
    script = (f.log.parent / "synth.ys").read_text()
    assert "read_verilog" in script and "synth_xilinx -top adder -family xcup -flatten" in script
    assert "-nodsp" not in script
    assert re.search(r"FDRE +24", (f.log.parent / "stat.txt").read_text())  # the report for people


@needs_yosys
def test_a_wider_adder_takes_more_luts_carries_and_flip_flops(synth):
    narrow = synth("adder8", ADDER, "adder")
    wide = synth("adder32", ADDER.replace("W = 8", "W = 32"), "adder")
    assert wide.ff == 96
    assert wide.lut > narrow.lut and wide.carry > narrow.carry


@needs_yosys
def test_a_16x16_multiplier_maps_to_a_dsp_on_ultrascale_plus_and_on_7_series(synth):
    plus = synth("mul16", MULTIPLIER, "mul16", "virtexuplus")
    assert plus.dsp >= 1 and plus.cells.get("DSP48E2", 0) >= 1, plus.cells
    seven = synth("mul16", MULTIPLIER, "mul16", "virtex7")
    assert seven.dsp >= 1 and seven.cells.get("DSP48E1", 0) >= 1, seven.cells
    assert seven.tool.endswith("-family xc7")


@needs_yosys
def test_logic_depth_counts_the_cells_between_registers(synth):
    assert synth("parity6", PARITY6, "parity6").logic_depth == 1  # one LUT6
    one = synth("adder8", ADDER, "adder")
    two = synth("two_stages", TWO_STAGES, "two_stages")
    assert two.logic_depth > one.logic_depth, (one.logic_depth, two.logic_depth)


@needs_yosys
def test_a_1024x36_memory_is_one_36k_block_ram(synth):
    f = synth("ram", RAM, "ram")
    assert f.bram_18k == 2 and f.lut == 0, f.cells


@needs_yosys
def test_readmemh_tables_are_found_relative_to_cwd(tmp_path):
    prj = tmp_path / "prj"
    src = _verilog(prj / "src", "rom", ROM)
    (prj / "mem").mkdir()
    # a permutation, so that the table is not the identity Yosys would reduce to wires
    (prj / "mem" / "table.mem").write_text("\n".join(f"{v:x}" for v in (3, 7, 1, 9, 12, 0, 5, 14, 2, 11, 8, 4, 15, 6, 13, 10)))
    f = synthesize_verilog([src], "rom", "virtex7", tmp_path / "w", cwd=prj)
    assert f.lut >= 4 and f.ff == 4, f.cells
    with pytest.raises(L1mlError, match=r"ERROR: Can not open file `mem/table.mem`"):
        synthesize_verilog([src], "rom", "virtex7", tmp_path / "w2")


@needs_yosys
def test_a_verilog_syntax_error_names_the_file_and_quotes_yosys(tmp_path):
    bad = _verilog(tmp_path, "bad", "module bad (input a, output y);\n  assign y = a +;\nendmodule\n")
    good = _verilog(tmp_path, "adder", ADDER)
    with pytest.raises(L1mlError) as err:
        synthesize_verilog([good, bad], "bad", "virtexuplus", tmp_path / "w")
    message = str(err.value)
    assert err.value.path == str(bad)
    assert message.startswith(str(bad)) and "bad.v:2: ERROR: syntax error" in message, message
    assert "yosys.log" in message and "Traceback" not in message


@needs_yosys
def test_a_missing_top_module_is_named(tmp_path):
    src = _verilog(tmp_path, "adder", ADDER)
    with pytest.raises(L1mlError, match=r"top 'nosuch'[\s\S]*ERROR: Module `nosuch' not found"):
        synthesize_verilog([src], "nosuch", "virtexuplus", tmp_path / "w")


def test_missing_files_and_tools_are_user_errors(tmp_path, monkeypatch):
    with pytest.raises(L1mlError, match="no such Verilog file"):
        synthesize_verilog([tmp_path / "none.v"], "none", "virtexuplus", tmp_path / "w")
    src = _verilog(tmp_path, "adder", ADDER)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(L1mlError, match="Yosys is not installed"):
        synthesize_verilog([src], "adder", "virtexuplus", tmp_path / "w")


@needs_yosys
def test_the_same_sources_are_synthesised_once_and_a_changed_one_again(tmp_path):
    first = synthesize_verilog([_verilog(tmp_path / "a", "adder", ADDER)], "adder", "virtexuplus", tmp_path / "w1")
    again = synthesize_verilog([_verilog(tmp_path / "b", "adder", ADDER)], "adder", "virtexuplus", tmp_path / "w2")
    assert "from the cache" in again.log.read_text() and "from the cache" not in first.log.read_text()
    assert (again.lut, again.ff, again.carry, again.logic_depth) == (first.lut, first.ff, first.carry, first.logic_depth)
    wider = synthesize_verilog([_verilog(tmp_path / "c", "adder", ADDER.replace("W = 8", "W = 9"))], "adder",
                               "virtexuplus", tmp_path / "w3")
    assert "from the cache" not in wider.log.read_text() and wider.ff == first.ff + 3


def test_a_synthesis_over_its_time_is_stopped(tmp_path):
    src = _verilog(tmp_path, "mul16", MULTIPLIER)
    with pytest.raises(L1mlError, match=r"did not finish in 0\.5 s"):
        synthesize_verilog([src], "mul16", "virtexuplus", tmp_path / "w", timeout_s=0.5)


# conifer's VHDL through GHDL and Yosys ----------------------------------------------------------------------


def _tiny_bdt(root: Path, n_trees: int) -> Path:
    """An xgboost BDT of n_trees trees of depth 2 on 4 features, converted by l1ml to conifer's VHDL: its fw folder."""
    import numpy as np
    import xgboost as xgb

    from l1ml.config.hw import load_target
    from l1ml.emulate.ensemble import from_xgboost_json
    from l1ml.firmware.conifer_project import convert_for_firmware
    from l1ml.quantize.fixedpoint import parse_fixed

    rng = np.random.default_rng(n_trees)
    x = rng.normal(0, 4, size=(500, 4)).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "seed": 1},
                        xgb.DMatrix(x, label=(x[:, 0] + x[:, 1] > 0).astype(int)), n_trees)
    ensemble = from_xgboost_json(json.loads(booster.save_raw("json")))
    hw = load_target("vu9p")
    fixed = parse_fixed("ap_fixed<12,5,AP_RND_CONV,AP_SAT>")
    [fw] = convert_for_firmware(ensemble, fixed, fixed, root, backends=("vhdl",), hw=hw,
                                clock_period_ns=hw.default_clock_ns, source={"kind": "test"})
    return fw


@pytest.fixture(scope="module")
def bdts(tmp_path_factory):
    root = tmp_path_factory.mktemp("bdt")
    return {n: _tiny_bdt(root / f"trees{n}", n) for n in (3, 6)}


@pytest.fixture(scope="module")
def bdt_figures(bdts, tmp_path_factory):
    root = tmp_path_factory.mktemp("bdt-synth")
    return {n: synthesize_vhdl(conifer_vhdl_sources(fw / "conifer_prj"), CONIFER_VHDL_TOP, "virtexuplus", root / f"trees{n}")
            for n, fw in bdts.items()}


@needs_yosys
@needs_ghdl
def test_a_tiny_bdt_goes_through_ghdl_and_yosys(bdts, bdt_figures):
    f = bdt_figures[3]
    assert f.lut > 0 and f.ff > 0 and f.carry > 0, f.cells  # the threshold comparisons are carry chains
    assert f.dsp == 0, "conifer's normalisation by 1.0 is a shift, not a multiplier"
    assert re.fullmatch(r"ghdl \S+ --synth --out=verilog \+ yosys \S+ synth_xilinx -family xcup", f.tool), f.tool
    netlist = f.log.parent / f"{CONIFER_VHDL_TOP}_ghdl.v"
    assert re.search(rf"^module {CONIFER_VHDL_TOP}\b", netlist.read_text(), flags=re.MULTILINE)
    ghdl_log = (f.log.parent / "ghdl.log").read_text()
    assert ghdl_log.count("$ ghdl -a") == len(conifer_vhdl_sources(bdts[3] / "conifer_prj"))


@needs_yosys
@needs_ghdl
def test_twice_the_trees_take_more_luts_and_flip_flops(bdt_figures):
    assert bdt_figures[6].lut > bdt_figures[3].lut and bdt_figures[6].ff > bdt_figures[3].ff


def test_conifer_sources_are_in_analysis_order(bdts, tmp_path):
    names = [p.stem for p in conifer_vhdl_sources(bdts[3] / "conifer_prj")]
    assert names == ["Constants", "Split", "Types", "Tree", "AddReduce", "Arrays0", "BDT", "BDTTop"]
    with pytest.raises(L1mlError, match="not a conifer VHDL project"):
        conifer_vhdl_sources(tmp_path)


@needs_ghdl
def test_a_vhdl_error_names_the_file_and_quotes_ghdl(bdts, tmp_path):
    files = conifer_vhdl_sources(bdts[3] / "conifer_prj")
    broken = tmp_path / "Tree.vhd"
    broken.write_text(files[3].read_text().replace("end rtl;", "end rtl", 1))
    files[3] = broken
    with pytest.raises(L1mlError) as err:
        synthesize_vhdl(files, CONIFER_VHDL_TOP, "virtexuplus", tmp_path / "w")
    assert err.value.path == str(broken) and "GHDL analysis of Tree.vhd failed" in str(err.value)
    assert "Tree.vhd:" in str(err.value).split("\n", 1)[1], str(err.value)


def test_conifer_has_its_own_estimator_for_both_backends(bdts):
    import conifer

    small, large = conifer_estimate(bdts[3]), conifer_estimate(bdts[6])
    assert small.tool == f"conifer {conifer.__version__} estimator" and small.backend == "vhdl"
    assert 0 < small.lut < large.lut and 0 < small.ff < large.ff
    assert large.latency_cycles >= small.latency_cycles >= 1 + 2  # at least the depth and a register
    hls = conifer_estimate(bdts[3], backend="xilinxhls")
    assert hls.backend == "xilinxhls" and hls.lut > 0
