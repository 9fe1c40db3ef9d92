"""Converted firmware projects behind one interface: what synthesis, verification and delivery need of a project,
whichever tool wrote it.

`l1ml convert` writes every project to `<run or --out folder>/firmware/<backend>/` with a `convert.json` that names
the tool and its backend. `open_project(folder)` reads it and returns the `FirmwareProject` class registered for them:

    tool     convert.json backend   --backend    project_dir    build script    simulated by
    hls4ml   Vitis, Vivado          vitis/vivado hls4ml_prj/    build_prj.tcl   g++ C-simulation
    conifer  xilinxhls              xilinxhls    conifer_prj/   build_hls.tcl   g++ C-simulation
    conifer  vhdl                   vhdl         conifer_prj/   (not HLS)       GHDL, against the C-simulation
    da4ml    rtl                    (--rtl)      da4ml_prj/     (not HLS)       Verilator, against the C-simulation

A new backend is a subclass registered with `@register(tool, backend, ...)`; nothing above the firmware layer names
a tool or a project folder.
"""

from __future__ import annotations

import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import yaml

from l1ml.documents import CONVERT, ConvertInfo, EmulatorSpec, read
from l1ml.emulate.bdt import BdtEmulator
from l1ml.emulate.ensemble import load
from l1ml.emulate.network import NetworkEmulator
from l1ml.errors import L1mlError
from l1ml.firmware import csim
from l1ml.firmware.conifer_project import ENSEMBLE, csim_sources
from l1ml.firmware.hls import EMULATOR, PROJECT
from l1ml.quantize.fixedpoint import parse_fixed

if TYPE_CHECKING:
    from l1ml.firmware.csim import Sources
    from l1ml.quantize.fixedpoint import FixedType

CSIM = "g++ C-simulation"  # simulated_by: l1ml.firmware.csim compiles csim_sources()
GHDL = "GHDL"  # simulated_by: l1ml.firmware.ghdl runs the project's VHDL testbench
VERILATOR = "Verilator"  # simulated_by: l1ml.firmware.rtl verilates the project's Verilog
BUILD_OUTPUTS = ("*_prj", "*.log", "*.o", "*.so", "*.cf", "work", "obj_dir", "__pycache__")  # never part of a delivered project


class UnknownFirmwareTool(L1mlError):
    """convert.json names a tool, or a backend of a tool, that no FirmwareProject is registered for."""


@dataclass
class FirmwareProject(ABC):
    """One converted project: `folder` is RUN_DIR/firmware/<backend>/, `info` its convert.json."""

    folder: Path
    info: ConvertInfo

    tool: ClassVar[str]  # set by @register
    project_subdir: ClassVar[str]  # the tool's own project, below folder
    build_script: ClassVar[str | None] = None  # the Tcl script HLS synthesis sources; None: not synthesised with HLS
    simulated_by: ClassVar[str] = CSIM
    release_folder: ClassVar[str] = "hls"  # its folder in a firmware release
    released_records: ClassVar[tuple[str, ...]] = (CONVERT,)  # conversion records a release carries as l1ml_<name>
    not_released: ClassVar[tuple[str, ...]] = ()  # patterns of project_dir left out of a release, besides build output

    @property
    def backend(self) -> str:
        """The backend as `--backend` names it (and `l1ml convert` names the folder)."""
        return self.info.backend

    @property
    def project_dir(self) -> Path:
        """What a synthesis job copies and hashes, and a release delivers."""
        return self.folder / self.project_subdir

    @property
    def hls_tool(self) -> str | None:
        """The HLS tool a synthesis job runs, "vitis" or "vivado" (None where build_script is None)."""
        return None

    @property
    def input_type(self) -> FixedType:
        """The type of the firmware's inputs."""
        return self.types()["input"]

    @property
    def hw_target(self) -> str | None:
        """The name of the hw target the project was converted for."""
        return self.info.target

    def types(self) -> dict[str, FixedType]:
        """The firmware's types by role ("input"; a BDT's also "threshold", "score", "weight")."""

        return {k: parse_fixed(v) for k, v in self.info.types.items()}

    def csim_sources(self) -> Sources | None:
        """The C++ the C-simulation compiles (`l1ml.firmware.csim`); None for a project not simulated by it."""
        return None

    @abstractmethod
    def emulator(self) -> tuple[object | None, str]:
        """(the bit-exact emulator, with `predict(x)`, ""), or (None, the reason why there is none)."""

    def synthesis_memory_gb(self) -> float:
        """The estimated peak memory of its HLS synthesis (the rule of `l1ml.synth.jobs`), before any floor."""
        raise L1mlError(f"the {self.backend} project is not synthesised with HLS", path=self.folder)

    def copy_release(self, dest: Path) -> None:
        """Copy the project as a release carries it to `dest`: its sources and build script without build output, and
        its conversion records as l1ml_<name>."""
        shutil.copytree(self.project_dir, dest, ignore=shutil.ignore_patterns(*BUILD_OUTPUTS, *self.not_released))
        for name in self.released_records:
            if (self.folder / name).is_file():
                shutil.copyfile(self.folder / name, dest / f"l1ml_{name}")


# the registry -----------------------------------------------------------------------------------------------------

_REGISTRY: dict[tuple[str, str], type[FirmwareProject]] = {}


def register(tool: str, *backends: str) -> Callable[[type[FirmwareProject]], type[FirmwareProject]]:
    """Class decorator: the FirmwareProject of `tool`'s projects with these convert.json backends. A tool and backend
    has one class: a second registration is refused."""

    def add(cls: type[FirmwareProject]) -> type[FirmwareProject]:
        taken = [f"{tool} {b} ({_REGISTRY[tool, b].__name__})" for b in backends if (tool, b) in _REGISTRY]
        if taken:
            raise L1mlError(f"a firmware project is already registered for {', '.join(taken)}", value=cls.__name__)
        cls.tool = tool
        _REGISTRY.update(dict.fromkeys(((tool, b) for b in backends), cls))
        return cls

    return add


def known_tools() -> dict[str, list[str]]:
    """The registered tools and their convert.json backends."""
    known: dict[str, list[str]] = {}
    for tool, backend in sorted(_REGISTRY):
        known.setdefault(tool, []).append(backend)
    return known


def open_project(folder: str | Path) -> FirmwareProject:
    """The project converted into `folder`, as the class registered for its convert.json's tool and backend."""
    folder = Path(folder)
    info = read(folder / CONVERT, ConvertInfo, "not a converted firmware project")
    tool, backend = info.tool, info.backend
    known = known_tools()
    if tool not in known:
        listed = "; ".join(f"{t} ({', '.join(b)})" for t, b in known.items())
        raise UnknownFirmwareTool(f"unknown firmware tool; l1ml knows: {listed}", path=folder / CONVERT, key="tool",
                                  value=tool)
    if backend not in known[tool]:
        raise UnknownFirmwareTool(f"unknown {tool} backend; l1ml knows: {', '.join(known[tool])}", path=folder / CONVERT,
                                  key="backend", value=backend)
    return _REGISTRY[tool, backend](folder, info)


def projects_in(target: str | Path) -> list[FirmwareProject]:
    """The converted projects of a run or --out folder (target/firmware/<backend>/), in the order of their folders."""
    return [open_project(p.parent) for p in sorted(Path(target).glob(f"firmware/*/{CONVERT}"))]


def select_project(target: Path, backend: str | None, fits: Callable[[FirmwareProject], bool], role: str,
                   hint: str = "") -> FirmwareProject:
    """The project of `target` named by --backend, else the first one that `fits` (is `role`, e.g. "C-simulated")."""
    projects = projects_in(target)
    root = Path(target) / "firmware"
    if not projects:
        raise L1mlError("no converted firmware; run `l1ml convert` first", path=root)
    names = ", ".join(p.backend for p in projects)
    fitting = [p for p in projects if fits(p)]
    if backend is None:
        if not fitting:
            raise L1mlError(f"no project here is {role} (found: {names}){hint}", path=root)
        return fitting[0]
    named = next((p for p in projects if p.backend == backend), None)
    if named is None:
        raise L1mlError(f"no {backend} project here; run `l1ml convert` first (found: {names})", path=root,
                        key="--backend", value=backend)
    if named not in fitting:
        raise L1mlError(f"the {backend} project is not {role} (found: {names}){hint}", path=root, key="--backend",
                        value=backend)
    return named


# hls4ml -------------------------------------------------------------------------------------------------------------


@register("hls4ml", "Vitis", "Vivado")
class Hls4mlProject(FirmwareProject):
    """A network converted by `l1ml.firmware.hls`: hls4ml_prj/, its configuration and the emulator specification."""

    project_subdir = "hls4ml_prj"
    build_script = "build_prj.tcl"
    released_records = (CONVERT, "hls4ml_config.yaml")

    @property
    def backend(self) -> str:
        return self.info.backend.lower()  # hls4ml's backend names are capitalised

    @property
    def hls_tool(self) -> str:
        return self.backend

    def csim_sources(self) -> Sources:
        return csim.hls4ml_sources(self.project_dir, PROJECT)

    def emulator(self) -> tuple[object | None, str]:
        path = self.folder / EMULATOR
        if not path.is_file():
            return None, f"no {EMULATOR}"
        spec = read(path, EmulatorSpec)
        return (None, spec.unsupported) if spec.unsupported is not None else (NetworkEmulator(spec), "")

    def synthesis_memory_gb(self) -> float:
        """2 GB + 0.5 GB per 1 000 multipliers (weights / ReuseFactor)."""

        path = self.folder / "hls4ml_config.yaml"
        config = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
        reuse = max(1, int(config.get("Model", {}).get("ReuseFactor", 1)))
        return 2.0 + 0.5 * self._count_weights() / reuse / 1000

    def _count_weights(self) -> int:
        """The sizes of the `w<N>` arrays in firmware/weights/."""

        total = 0
        for header in (self.project_dir / "firmware" / "weights").glob("w*.h"):
            m = re.search(r"\w+\s+w\d+\[(\d+)\]", header.read_text()[:2000])
            total += int(m.group(1)) if m else 0
        return total


# conifer ------------------------------------------------------------------------------------------------------------


class _ConiferProject(FirmwareProject):
    """A BDT converted by `l1ml.firmware.conifer_project`: conifer_prj/, ensemble.json and its types."""

    project_subdir = "conifer_prj"


@register("conifer", "xilinxhls")
class ConiferHlsProject(_ConiferProject):
    """conifer's HLS C++: C-simulated, synthesised with conifer's build_hls.tcl."""

    build_script = "build_hls.tcl"
    released_records = (CONVERT, "conifer_config.json", "ensemble.json")

    @property
    def hls_tool(self) -> str:
        return "vitis"  # conifer's build_hls.tcl runs in Vitis HLS and Vivado HLS alike

    def csim_sources(self) -> Sources:
        return csim_sources(self.folder, self.info)

    def emulator(self) -> tuple[object | None, str]:
        """The fixed-point emulation of the trees as converted, in the project's types."""

        t = self.types()
        return BdtEmulator(load(self.folder / ENSEMBLE), t["input"], t["threshold"], t["score"], t["weight"]), ""

    def synthesis_memory_gb(self) -> float:
        """2 GB + 0.25 GB per 1 000 tree nodes."""

        ensemble = load(self.folder / ENSEMBLE)
        nodes = sum(len(t["feature"]) for r in ensemble["trees"] for t in r)
        return 2.0 + 0.25 * nodes / 1000


@register("conifer", "vhdl")
class ConiferVhdlProject(_ConiferProject):
    """conifer's VHDL, in one type (`conifer_project.vhdl_type`): simulated with GHDL on its testbench and compared
    with the C-simulation of the HLS project; not synthesised with HLS."""

    simulated_by = GHDL
    release_folder = "vhdl"
    not_released = ("*.txt",)  # the testbench's input and output files: a release writes its own

    def emulator(self) -> tuple[object | None, str]:
        return None, "the VHDL is compared with the C-simulation of the HLS project"


# da4ml ---------------------------------------------------------------------------------------------------------------


@register("da4ml", "rtl")
class RtlProject(FirmwareProject):
    """A network's RTL from `l1ml.firmware.rtl` (`l1ml convert --rtl`): da4ml's Verilog and VHDL, simulated with
    Verilator and compared with the C-simulation of the network's HLS project and with the emulator; synthesised by
    Vivado alone (`l1ml synth submit --kind vivado-rtl`), with no HLS step."""

    project_subdir = "da4ml_prj"
    simulated_by = VERILATOR
    release_folder = "rtl"
    released_records = (CONVERT, "rtl.json", EMULATOR)

    @property
    def backend(self) -> str:
        return "rtl"

    def emulator(self) -> tuple[object | None, str]:
        return NetworkEmulator(read(self.folder / EMULATOR, EmulatorSpec)), ""
