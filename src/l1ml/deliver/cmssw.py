"""The CMSSW emulator package of a delivery, in the convention CMS L1 ML models ship in (hls4mlEmulator::Model).

    emulator/
      Makefile                      make / make test / make install PREFIX=DIR
      include/hls4ml/emulator.h     the hls4mlEmulator::Model interface (used when EMULATOR_EXTRAS is not given)
      <Name>/
        <Name>.h                    types, input scaling and thresholds
        emulator.cc                 the Model class; extern "C" create_model / destroy_model
        firmware/ ...               the firmware C++ that `l1ml verify` compiled, weights compiled in from headers
      test/run_vectors.cpp          loads <Name>.so as CMSSW does and checks the test vectors bit for bit

`<Name>` is `<model>_v<X>_<Y>_<Z>`: CMSSW loads the library by that name, so two versions can live side by side.
The library is built with hidden symbols except create_model and destroy_model: the firmware's global names
(the top function, the weight arrays) cannot clash with another model's in the same process.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from l1ml.errors import L1mlError

TEMPLATES = Path(__file__).parent / "templates" / "cmssw"
BUILD_TIMEOUT_S = 1800
#: What the package's Makefile builds inside the package (`make`, `make test`, `make install` with its default PREFIX),
#: as patterns relative to the package; the manifest states them, and `l1ml deliver --check` ignores those files
BUILD_PRODUCTS = ("emulator/*/*.so", "emulator/test/run_vectors", "emulator/lib64/*.so")


def library_name(model: str, version: str) -> str:
    """A C++ identifier and file name for the emulator library.

    >>> library_name("ae-demo", "1.2.0")
    'ae_demo_v1_2_0'
    """
    name = re.sub(r"\W", "_", f"{model}_v{version.replace('.', '_')}")
    return name if re.match(r"[A-Za-z_]", name) else f"m_{name}"


@dataclass
class ModelFacts:
    """What the public header states: types, scaling, thresholds."""

    model: str
    version: str
    input_type: object  # FixedType
    output_type: object  # FixedType
    n_inputs: int
    n_outputs: int
    offset: np.ndarray
    shift: np.ndarray
    thresholds: list[dict]  # rate_khz, value, code


def write_package(folder: Path, name: str, sources, facts: ModelFacts, l1ml_version: str) -> None:
    """Write the package for `sources` (the verified firmware, a `csim.Sources`) under `folder`."""
    if not facts.thresholds:  # C++ has no zero-length arrays
        raise L1mlError("the run has no thresholds", key="evaluation.rates_khz")
    ap_types = next((d for d in sources.include_dirs if f"{d}/ap_fixed.h" in sources.files), None)
    if ap_types is None:
        raise L1mlError("the firmware sources carry no ap_types headers", path=folder)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    top = sources.top
    values = {
        "name": name, "model": facts.model, "version": facts.version, "l1ml_version": l1ml_version,
        "guard": f"{name.upper()}_H_", "input_type": str(facts.input_type), "output_type": str(facts.output_type),
        "input_rounding": f"{facts.input_type.rounding}, {facts.input_type.overflow}",
        "n_inputs": facts.n_inputs, "n_outputs": facts.n_outputs,
        "offsets": ", ".join(repr(float(v)) for v in facts.offset), "shifts": ", ".join(str(int(v)) for v in facts.shift),
        "n_thresholds": len(facts.thresholds), "output_fractional": facts.output_type.fractional,
        "rates": ", ".join(repr(float(t["rate_khz"])) for t in facts.thresholds),
        "threshold_values": ", ".join(repr(float(t["value"])) for t in facts.thresholds),
        "threshold_codes": ", ".join(f"{int(t['code'])}LL" for t in facts.thresholds),
        "top": top.name, "top_header": top.header, "in_type": top.in_type, "out_type": top.out_type,
        "optimisation": sources.optimisation, "ap_types": ap_types,
        "include_flags": "".join(f" -I$(NAME)/{d}" for d in sources.include_dirs if d != ap_types),
        "units": "".join(f" $(NAME)/{u}" for u in sources.units),
    }
    model_dir = folder / name
    for rel, text in sources.files.items():
        path = model_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (model_dir / f"{name}.h").write_text(env.get_template("model.h.j2").render(values))
    (model_dir / "emulator.cc").write_text(env.get_template("emulator.cc.j2").render(values))
    (folder / "include" / "hls4ml").mkdir(parents=True)
    shutil.copyfile(TEMPLATES / "emulator.h", folder / "include" / "hls4ml" / "emulator.h")
    (folder / "test").mkdir()
    (folder / "test" / "run_vectors.cpp").write_text(env.get_template("run_vectors.cpp.j2").render(values))
    (folder / "Makefile").write_text(env.get_template("Makefile.j2").render(values))


@dataclass
class PackageTest:
    passed: bool
    seconds: float
    output: str


def build_and_test(package: Path, scratch_dir: Path | None = None, timeout_s: int = BUILD_TIMEOUT_S) -> PackageTest:
    """`make test` of a delivery's emulator, in a scratch copy of `emulator/` and `test_vectors/` under `scratch_dir`
    (the package stays free of build products): builds the library with g++ and runs the vectors through it, firmware
    inputs and raw. make and the compilers run in their own process group, stopped with it if this is interrupted."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".emulator-build.tmp-", dir=scratch_dir) as tmp:
        for part in ("emulator", "test_vectors"):
            shutil.copytree(package / part, Path(tmp) / part)
        try:
            proc = subprocess.Popen(["make", "-C", str(Path(tmp) / "emulator"), "test"], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
        except FileNotFoundError:
            raise L1mlError("make is not installed (Debian package make)") from None
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            output = f"make test did not finish in {timeout_s} s"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return PackageTest(proc.returncode == 0, time.perf_counter() - start, output.replace(tmp, "<scratch>"))
