"""conifer projects for BDTs: the HLS C++ (`xilinxhls`) and the VHDL (`vhdl`) firmware of an ensemble.

`RUN_DIR/firmware/<backend>/` holds `conifer_prj/` (what conifer wrote), `ensemble.json` (the trees as
converted), `conifer_config.json` (the configuration used) and `convert.json` (types, part, clock).

The two backends do not share one arithmetic: the HLS project has separate input, threshold and score
types and sums in the score type (saturating if the type says so); conifer's VHDL has one signed type for
everything and wraps. For the VHDL l1ml picks one type that holds the inputs, the grid thresholds and
every partial sum (so nothing wraps) with the fractional bits of the finer of input and score types:
its output then equals the HLS score bit for bit, which `l1ml verify` checks with GHDL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from l1ml.documents import CONVERT, ConvertInfo
from l1ml.emulate import ensemble as ens_mod
from l1ml.emulate.ensemble import firmware_thresholds, max_abs_score, quantized_values, threshold_type_for
from l1ml.errors import L1mlError
from l1ml.firmware import csim
from l1ml.quantize.fixedpoint import FixedType, parse_fixed

if TYPE_CHECKING:
    from l1ml.config.hw import HwTarget

PROJECT = "l1ml_bdt"
BDT_BACKENDS = ("xilinxhls", "vhdl")
ENSEMBLE = "ensemble.json"


def write_project(ensemble: dict, types: dict[str, FixedType], out_dir: Path, *, backend: str, hw: HwTarget,
                  clock_period_ns: float, source: dict) -> Path:
    """Write the conifer project of `ensemble` for the hw target to `out_dir` (replaced as a whole, atomically).

    `types`: input, threshold, score and weight FixedTypes (the VHDL backend uses one type for all of them)."""
    import conifer  # heavy: imported only where needed

    if backend not in BDT_BACKENDS:
        raise L1mlError(f"unknown BDT backend; choose one of: {', '.join(BDT_BACKENDS)}", key="--backend", value=backend)
    names = {k: str(v) for k, v in types.items()}
    config = {"backend": backend, "output_dir": None, "project_name": PROJECT, "xilinx_part": hw.part,
              "clock_period": clock_period_ns, "input_precision": names["input"],
              "threshold_precision": names["threshold"], "score_precision": names["score"],
              "weight_precision": names["weight"]}
    if backend == "xilinxhls":
        config["unroll"] = True
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        config["output_dir"] = str(tmp / "conifer_prj")
        with quiet_conifer(), _python_fixed_point():
            model = conifer.model.make_model(json.loads(json.dumps(ensemble)), dict(config))
            model.write()
        config["output_dir"] = str(out_dir / "conifer_prj")
        ens_mod.save(ensemble, tmp / ENSEMBLE)
        (tmp / "conifer_config.json").write_text(json.dumps(config, indent=1) + "\n")
        info = ConvertInfo(tool="conifer", tool_version=str(conifer.__version__), backend=backend, project=PROJECT,
                           part=hw.part, clock_period_ns=clock_period_ns, target=hw.name,
                           n_features=ensemble["n_features"], n_outputs=ens_mod.n_outputs(ensemble), types=names,
                           details={k: ensemble[k] for k in ("n_trees", "n_classes", "max_depth", "splitting_convention")},
                           source=source)
        info.write(tmp / CONVERT)
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


WEIGHT_TYPE = FixedType(2, 2, True, is_int=True)  # ap_int<2>: holds conifer's one-hot weights 0 and 1


def convert_for_firmware(ensemble: dict, input_type: FixedType, score_type: FixedType, root: Path, *,
                         backends: tuple[str, ...], hw: HwTarget, clock_period_ns: float, source: dict) -> list[Path]:
    """Projects under root/<backend>/ for an ensemble l1ml converted itself ('<' splits): thresholds moved to the
    input grid, leaf values on the score grid; the VHDL in one type that makes it equal to the HLS score."""

    firmware = quantized_values(firmware_thresholds(ensemble, input_type), score_type)
    out = []
    for backend in backends:
        if backend == "xilinxhls":
            types = {"input": input_type, "threshold": threshold_type_for(input_type), "score": score_type,
                     "weight": WEIGHT_TYPE}
        else:
            one = vhdl_type(input_type, score_type, max_abs_score(firmware))
            types = dict.fromkeys(("input", "threshold", "score", "weight"), one)
        out.append(write_project(firmware, types, root / backend, backend=backend, hw=hw,
                                 clock_period_ns=clock_period_ns,
                                 source={**source, "input_type": str(input_type), "score_type": str(score_type)}))
    return out


def vhdl_type(input_type: FixedType, score_type: FixedType, bound: float) -> FixedType:
    """One signed type for conifer's VHDL: the finer fraction of input and score types, integer bits for the inputs,
    the grid thresholds (max + 1 LSB) and `bound` (the largest |partial sum|), so that nothing wraps."""
    frac = max(input_type.fractional, score_type.fractional)
    needed = max(abs(input_type.min_value), input_type.max_value + input_type.lsb, bound)
    integer = max(input_type.integer + 1, int(np.floor(np.log2(needed))) + 2 if needed > 0 else 1)
    return FixedType(frac + integer, integer, True, score_type.rounding, "AP_WRAP")


# C-simulation of the HLS project ----------------------------------------------------------------------------

TOP_HEADER = """\
// l1ml: the conifer project as one translation unit, and a top function with fixed-size arrays
#include "firmware/BDT.cpp"
#include "firmware/{project}.cpp"

static const int l1ml_n_scores = BDT::fn_classes(n_classes);

inline void l1ml_bdt_top(input_t x[n_features], score_t y[BDT::fn_classes(n_classes)]) {{
    input_arr_t in;
    score_arr_t score;
    for (int i = 0; i < n_features; ++i) in[i] = x[i];
    {project}(in, score);
    for (int j = 0; j < l1ml_n_scores; ++j) y[j] = score[j];
}}
"""


def csim_sources(fw_dir: Path, info: ConvertInfo):
    """The C++ of the xilinxhls project in `fw_dir` (conifer's top function, called through `l1ml_bdt_top`) for
    `csim.build`; `info`: its convert.json."""

    prj = fw_dir / "conifer_prj"
    files = {}
    for name in ("BDT.h", "BDT.cpp", "parameters.h", f"{info.project}.cpp", f"{info.project}.h"):
        path = prj / "firmware" / name
        if not path.is_file():
            raise L1mlError("conifer project file missing; convert again", path=path)
        files[f"firmware/{name}"] = path.read_text()
    files.update(ap_headers())
    files["l1ml_bdt_top.h"] = TOP_HEADER.format(project=info.project)
    top = csim.TopFunction("l1ml_bdt_top", "l1ml_bdt_top.h", "input_t", info.n_features, "score_t", info.n_outputs)
    # -O1: GCC's -O2 takes twice as long on conifer's unrolled trees (56 s against 28 s for 50 trees of depth 3,
    # 57 features) for 5 % more speed
    return csim.Sources(files, [], ["firmware", "ap_types"], top, optimisation="-O1")


def ap_headers() -> dict[str, str]:
    """Xilinx's open ap_types headers (as hls4ml ships them) and hls_stream.h, under ap_types/."""
    import hls4ml  # heavy: imported only where needed

    root = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    return {f"ap_types/{p.relative_to(root)}": p.read_text() for p in sorted(root.rglob("*.h"))}


# helpers ---------------------------------------------------------------------------------------------------


class _PythonFixedPoint:
    """conifer's FixedPointConverter, in Python: conifer's own compiles a pybind11 module into the current directory
    for every type. Same results: the type's bit pattern of a double converted with the type's rounding."""

    def __init__(self, type_string: str):
        self.type = parse_fixed(type_string)
        self.width, self.integer_bits, self.fractional_bits = self.type.width, self.type.integer, self.type.fractional
        self.signed = self.type.signed

    def to_int(self, x):
        return int(self.type.to_codes(float(x)))

    def to_double(self, x):
        return float(self.type.quantize(float(x)))

    def from_int(self, x):
        return float(int(x) * self.type.lsb)


@contextlib.contextmanager
def _python_fixed_point():
    from conifer.backends.vhdl import writer  # heavy: imported only where needed

    saved = writer.FixedPointConverter
    writer.FixedPointConverter = _PythonFixedPoint
    try:
        yield
    finally:
        writer.FixedPointConverter = saved


@contextlib.contextmanager
def quiet_conifer():
    """Without conifer's "experimental" log warnings, the template files its writers leave to the GC to close, and
    numpy's deprecation of the array-to-int conversion in its estimators."""
    logger = logging.getLogger("conifer")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)
