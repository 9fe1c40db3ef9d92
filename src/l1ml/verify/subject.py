"""What `l1ml verify` checks, as one object: a firmware project, its C-simulation, its emulator and the models it must
agree with. `l1ml.verify.subjects` (training runs), `verify.bdt` and `verify.byo` (your own models) build them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l1ml.documents import Metrics
from l1ml.firmware.project import CSIM, FirmwareProject, select_project
from l1ml.quantize.fixedpoint import FixedType


@dataclass
class Subject:
    kind: str  # "network" or "bdt"
    target: Path  # the run or BYO folder
    firmware_dir: Path  # RUN_DIR/firmware/<backend>
    input_type: FixedType
    n_features: int
    model_name: str  # what the firmware must equal bit for bit, e.g. "QKeras"
    model_output: Callable[[np.ndarray], np.ndarray]  # on firmware inputs
    csim_sources: Callable[[], object]  # -> csim.Sources
    emulator: object | None = None  # has predict(x)
    emulator_note: str = ""
    extra_checks: list[Callable] = field(default_factory=list)  # (subject, sample, csim_out) -> list of checks
    extra_parts: Callable[[], dict[str, np.ndarray]] | None = None  # more adversarial blocks of firmware inputs
    also_checked: list[Path] = field(default_factory=list)  # other firmware projects the checks cover (a BDT's VHDL)
    # training runs only
    run: RunContext | None = None

    @property
    def checked_dirs(self) -> list[Path]:
        """Every firmware project whose content the report vouches for."""
        return [self.firmware_dir, *self.also_checked]


@dataclass
class RunContext:
    config: object  # TrainConfig
    metrics: Metrics
    score_type: FixedType
    test_events: dict[str, np.ndarray]  # raw features by sample; "background" first
    raw_to_firmware: Callable[[np.ndarray], np.ndarray]
    float_score: Callable[[np.ndarray], np.ndarray]  # raw events -> float model score


def verified_project(target: Path, backend: str | None) -> FirmwareProject:
    """The C-simulated project under target/firmware/ that verify checks (the first, or the one named by --backend); the
    others are checked against it."""
    return select_project(target, backend, lambda p: p.simulated_by == CSIM, "C-simulated",
                          "; verify the C-simulated project: the others are checked against it")
