"""FPGA targets: the part, what it has, the clocks it runs at and the latency an algorithm may take.

The targets live as YAML files in the top-level `hw/` folder (shipped inside the wheel as `l1ml/hw`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from l1ml.config.loader import StrictModel, load_config
from l1ml.errors import L1mlError


class Resources(StrictModel):
    lut: int = Field(ge=0, description="CLB look-up tables")
    ff: int = Field(ge=0, description="CLB flip-flops")
    dsp: int = Field(ge=0, description="DSP slices (DSP48E1/DSP48E2)")
    bram_36k: int = Field(ge=0, description="36 Kb block RAMs (each is two BRAM_18K as HLS counts them)")
    uram: int = Field(ge=0, description="288 Kb UltraRAM blocks (0 on 7-series)")

    @property
    def bram_18k(self) -> int:
        return 2 * self.bram_36k


class HwTarget(StrictModel):
    name: str
    part: str = Field(pattern=r"^x[a-zA-Z0-9-]+$", description="Xilinx/AMD part name as Vivado takes it")
    family: str
    board_use: str = Field(description="where the part is used in the trigger")
    datasheet: str = Field(description="the vendor document the resource counts come from")
    slr: int = Field(ge=1, description="super logic regions (dies)")
    resources: Resources
    clock_periods_ns: list[float] = Field(min_length=1, description="algorithm clock periods; the first is the default")
    latency_budget_ns: float = Field(gt=0, description="latency allowed to one algorithm on this target")

    @field_validator("clock_periods_ns")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(p <= 0 for p in v):
            raise ValueError("clock periods must be positive")
        return v

    @property
    def default_clock_ns(self) -> float:
        return self.clock_periods_ns[0]


def hw_dir() -> Path:
    """The folder of target YAML files: inside the installed package, else the source tree's `hw/`."""
    packaged = Path(__file__).resolve().parent.parent / "hw"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "hw"


def list_targets() -> list[str]:
    return sorted(p.stem for p in hw_dir().glob("*.yaml"))


def load_target(name_or_path: str | Path) -> HwTarget:
    """A target by name (`vu9p`) or by path to a YAML file (`hw/vu9p.yaml`)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = hw_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise L1mlError(f"unknown hw target; known targets: {', '.join(list_targets())}", value=str(name_or_path))
    return load_config(path, HwTarget)[1]
