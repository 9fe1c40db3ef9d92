"""The FirmwareProject interface: each kind of converted folder opens as its class and answers what synthesis,
verification and delivery ask of it; an unknown tool and a duplicate registration are refused by name."""

from __future__ import annotations

import json
import shutil

import pytest

from l1ml.errors import L1mlError
from l1ml.firmware import project as fp
from l1ml.runs import tree_hash

from helpers import SHARED, small_converted_bdt

MODELS = SHARED / "fixtures" / "models"


@pytest.fixture(scope="module")
def bdt_dir(tmp_path_factory):
    """A small BDT of your own, converted with conifer: xilinxhls and vhdl."""
    return small_converted_bdt(tmp_path_factory.mktemp("fp_bdt"), 3)


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory):
    """hls4ml's 3-layer QKeras classifier of ../shared/fixtures, converted for Vitis HLS (with its logits project)."""
    if not MODELS.is_dir():
        pytest.skip(f"fixtures not found at {MODELS}")
    from l1ml.firmware.byo import convert_keras

    out = tmp_path_factory.mktemp("fp_keras") / "qkeras_3layer"
    convert_keras(MODELS / "exmodels__qkeras_3layer.json", MODELS / "exmodels__qkeras_3layer_weights.h5", out,
                  input_type=None, target="vu9p", backend="vitis", reuse_factor=1, clock_period_ns=None)
    return out


def test_conifer_projects(bdt_dir):
    from l1ml.emulate.bdt import BdtEmulator

    vhdl, hls = fp.projects_in(bdt_dir)  # in the order of their folders
    assert (type(hls), type(vhdl)) == (fp.ConiferHlsProject, fp.ConiferVhdlProject)
    assert (hls.tool, hls.backend, vhdl.tool, vhdl.backend) == ("conifer", "xilinxhls", "conifer", "vhdl")
    assert hls.project_dir == bdt_dir / "firmware" / "xilinxhls" / "conifer_prj"
    assert (hls.project_dir / hls.build_script).is_file() and hls.hls_tool == "vitis"
    assert str(hls.input_type) == "ap_fixed<12,6,AP_RND_CONV,AP_SAT>" and hls.hw_target == "vu13p"
    assert hls.csim_sources().top.n_in == 4 and hls.simulated_by == fp.CSIM
    emulator, note = hls.emulator()
    assert isinstance(emulator, BdtEmulator) and emulator.input_type == hls.input_type and note == ""
    assert hls.synthesis_memory_gb() == pytest.approx(2.0, abs=0.01)  # 4 trees of depth 2

    assert vhdl.project_dir == bdt_dir / "firmware" / "vhdl" / "conifer_prj"
    assert vhdl.build_script is None and vhdl.hls_tool is None and vhdl.simulated_by == fp.GHDL
    assert vhdl.csim_sources() is None
    assert vhdl.emulator()[0] is None and "C-simulation" in vhdl.emulator()[1]
    assert vhdl.input_type.fractional >= hls.input_type.fractional  # the VHDL's one type holds the inputs
    with pytest.raises(L1mlError, match="the vhdl project is not synthesised with HLS"):
        vhdl.synthesis_memory_gb()


def test_hls4ml_projects(keras_dir):
    from l1ml.emulate.network import NetworkEmulator
    from l1ml.firmware.byo import LOGITS

    (project,) = fp.projects_in(keras_dir)  # the logits project lies below it, not beside it
    logits = fp.open_project(project.folder / LOGITS)
    for p in (project, logits):
        assert type(p) is fp.Hls4mlProject and (p.tool, p.backend, p.hls_tool) == ("hls4ml", "vitis", "vitis")
        assert p.project_dir == p.folder / "hls4ml_prj" and (p.project_dir / p.build_script).is_file()
        assert str(p.input_type) == "ap_fixed<16,6,AP_RND_CONV,AP_SAT>" and p.hw_target == "vu9p"
        assert p.csim_sources().top.n_in == 16 and p.simulated_by == fp.CSIM
        # 16x64 + 64x32 + 32x32 + 32x5 weights at ReuseFactor 1
        assert p.synthesis_memory_gb() == pytest.approx(2.0 + 0.5 * (1024 + 2048 + 1024 + 160) / 1000)
    assert project.emulator() == (None, "layer 'softmax' of class Softmax")
    assert isinstance(logits.emulator()[0], NetworkEmulator)


def _records(folder):
    return {name for name in ("convert.json", "hls4ml_config.yaml", "conifer_config.json", "ensemble.json")
            if (folder / f"l1ml_{name}").is_file()}


def test_a_release_carries_the_sources_and_records_without_build_output(bdt_dir, keras_dir, tmp_path):
    shutil.copytree(keras_dir, tmp_path / "keras")
    (project,) = fp.projects_in(tmp_path / "keras")
    (project.project_dir / "old_prj").mkdir()  # what an HLS run in the project folder leaves
    project.copy_release(tmp_path / "hls")
    assert (tmp_path / "hls" / "build_prj.tcl").is_file() and not list((tmp_path / "hls").glob("*_prj"))
    assert _records(tmp_path / "hls") == {"convert.json", "hls4ml_config.yaml"}
    vhdl, hls = fp.projects_in(bdt_dir)
    hls.copy_release(tmp_path / "bdt_hls")
    assert _records(tmp_path / "bdt_hls") == {"convert.json", "conifer_config.json", "ensemble.json"}
    vhdl.copy_release(tmp_path / vhdl.release_folder)
    assert _records(tmp_path / "vhdl") == {"convert.json"} and not list((tmp_path / "vhdl").glob("*.txt"))
    assert (hls.release_folder, vhdl.release_folder) == ("hls", "vhdl")


def test_jobs_run_on_the_project_of_their_kind(bdt_dir, keras_dir):
    from l1ml.synth.jobs import spec_for

    def spec(target, kind, backend=None):
        return spec_for(target, kind=kind, backend=backend, steps=["csynth"], mem_gb=None, time_s=60, cpus=1,
                        floor_gb=1.0, settings=None, container=None)

    hls = spec(bdt_dir, "hls")
    fw = bdt_dir / "firmware"
    assert (hls.project, hls.tool, hls.build_script) == (str(fw / "xilinxhls" / "conifer_prj"), "vitis", "build_hls.tcl")
    assert hls.project_hash == tree_hash(fw / "xilinxhls" / "conifer_prj") and hls.extra.hw_target == "vu13p"
    verify = spec(bdt_dir, "verify")
    assert verify.project == hls.project and verify.project_hash == tree_hash(fw / "xilinxhls") and verify.tool == "l1ml"
    ghdl = spec(bdt_dir, "ghdl")
    assert ghdl.project == str(fw / "vhdl" / "conifer_prj") and ghdl.project_hash == tree_hash(fw / "vhdl" / "conifer_prj")
    with pytest.raises(L1mlError, match="the vhdl project is not synthesised with HLS"):
        spec(bdt_dir, "hls", "vhdl")
    with pytest.raises(L1mlError, match=r"no vitis project here.*\(found: vhdl, xilinxhls\)"):
        spec(bdt_dir, "hls", "vitis")
    network = spec(keras_dir, "hls")
    assert (network.tool, network.build_script, network.extra.hw_target) == ("vitis", "build_prj.tcl", "vu9p")
    assert network.project_hash == tree_hash(keras_dir / "firmware" / "vitis" / "hls4ml_prj")


def test_verify_checks_the_c_simulated_project(bdt_dir):
    from l1ml.verify.subject import verified_project

    assert verified_project(bdt_dir, None).backend == "xilinxhls"
    with pytest.raises(L1mlError, match="the vhdl project is not C-simulated.*the others are checked against it"):
        verified_project(bdt_dir, "vhdl")


def _convert_json(bdt_dir, **changes) -> str:
    """The VHDL project's convert.json, changed."""
    return json.dumps({**json.loads((bdt_dir / "firmware" / "vhdl" / "convert.json").read_text()), **changes})


def test_an_unknown_tool_or_backend_is_named_with_the_known_ones(bdt_dir, tmp_path):
    folder = tmp_path / "rtl"
    folder.mkdir()
    (folder / "convert.json").write_text(_convert_json(bdt_dir, tool="finn", backend="verilog"))
    with pytest.raises(fp.UnknownFirmwareTool, match=r"key 'tool', value 'finn': unknown firmware tool; l1ml knows: "
                                                     r"conifer \(vhdl, xilinxhls\); da4ml \(rtl\); hls4ml \(Vitis, Vivado\)"):
        fp.open_project(folder)
    (folder / "convert.json").write_text(_convert_json(bdt_dir, tool="da4ml", backend="verilog"))
    with pytest.raises(fp.UnknownFirmwareTool, match="value 'verilog': unknown da4ml backend; l1ml knows: rtl"):
        fp.open_project(folder)
    (folder / "convert.json").write_text(_convert_json(bdt_dir, backend="verilog"))
    with pytest.raises(fp.UnknownFirmwareTool, match="value 'verilog': unknown conifer backend; l1ml knows: vhdl, xilinxhls"):
        fp.open_project(folder)
    (folder / "convert.json").unlink()
    with pytest.raises(L1mlError, match="not a converted firmware project"):
        fp.open_project(folder)


def test_a_new_backend_plugs_in_and_a_duplicate_is_refused(bdt_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "_REGISTRY", dict(fp._REGISTRY))

    @fp.register("da4ml", "verilog")
    class RtlProject(fp.ConiferVhdlProject):
        project_subdir = "rtl"

    folder = tmp_path / "firmware" / "verilog"
    folder.mkdir(parents=True)
    (folder / "convert.json").write_text(_convert_json(bdt_dir, tool="da4ml", backend="verilog", types={"input": "ap_int<8>"}))
    (opened,) = fp.projects_in(tmp_path)
    assert type(opened) is RtlProject and opened.tool == "da4ml" and opened.project_dir == folder / "rtl"
    before = dict(fp._REGISTRY)
    with pytest.raises(L1mlError, match=r"already registered for conifer vhdl \(ConiferVhdlProject\)"):
        fp.register("conifer", "xilinxhls2", "vhdl")(type("Other", (fp.ConiferVhdlProject,), {}))
    assert fp._REGISTRY == before, "a refused registration registers nothing"


def test_a_folder_without_projects(tmp_path):
    assert fp.projects_in(tmp_path) == []
    shutil.rmtree(tmp_path)
    with pytest.raises(L1mlError, match="no converted firmware"):
        fp.select_project(tmp_path, None, lambda p: True, "anything")
