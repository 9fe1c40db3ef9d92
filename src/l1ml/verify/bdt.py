"""What `l1ml verify` checks for a BDT (conifer) project.

- `bit_exact`: the C-simulation of the HLS (xilinxhls) project == the fixed-point emulation of the trees as
  converted (inputs, thresholds and leaves in the project's types, conifer's order of summation);
- for trees converted from xgboost, `leaves`: on the firmware's inputs, the leaf the firmware selects in
  every tree == xgboost's `pred_leaf` (thresholds on the input grid change nothing there), and
  `conversion`: on float32 inputs, including each threshold and its float32 neighbours, the converted
  trees' leaves == xgboost's (the check that conifer 1.11's own converter fails with xgboost 3);
- `vhdl`: GHDL's simulation of the VHDL project == the C-simulation, bit for bit, on a sample.

The projects come from `l1ml.firmware.project`: the C-simulated one is the reference, and every project simulated
with GHDL is checked against it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1ml.emulate.bdt import BdtEmulator, Forest
from l1ml.firmware import ghdl
from l1ml.firmware.project import GHDL, FirmwareProject, projects_in
from l1ml.models.bdt import from_booster
from l1ml.verify.bitexact import Comparison, Sample, compare, pick_events
from l1ml.verify.report import Check
from l1ml.verify.subject import Subject, verified_project

MAX_PROBE_EVENTS = 30_000


def bdt_subject(target: Path, backend: str | None, booster=None, vhdl_events: int = 200) -> Subject:
    """The subject of the conifer projects under target/firmware/: the C-simulated one, and those simulated with GHDL
    checked against it; `booster`: the xgboost model they came from."""
    hls = verified_project(target, backend)
    emulator, _ = hls.emulator()
    n_features = hls.info.n_features
    subject = Subject(
        kind="bdt", target=target, firmware_dir=hls.folder, input_type=emulator.input_type, n_features=n_features,
        model_name="fixed-point emulation", model_output=emulator.predict, csim_sources=hls.csim_sources,
        emulator=None, emulator_note="the fixed-point emulation is the reference of the bit_exact check")
    subject.extra_parts = lambda: {"adversarial:thresholds": threshold_probes(emulator, n_features)}
    if booster is not None:
        subject.extra_checks.append(lambda s, sample, fw: [leaves_check(emulator, booster, sample)])
        subject.extra_checks.append(lambda s, sample, fw: [conversion_check(booster, sample, s.run)])
    for vhdl in (p for p in projects_in(target) if p.simulated_by == GHDL):
        subject.extra_checks.append(lambda s, sample, fw, vhdl=vhdl: [vhdl_check(vhdl, sample, fw, vhdl_events, s.input_type)])
        subject.also_checked.append(vhdl.folder)
    return subject


def threshold_probes(emulator: BdtEmulator, n_features: int) -> np.ndarray:
    """Grid inputs on each split's threshold and one LSB either side (every other feature zero)."""
    features, thresholds = split_nodes(emulator.forest)
    t = emulator.input_type
    rows = []
    for delta in (-t.lsb, 0.0, t.lsb):
        x = np.zeros((len(features), n_features))
        x[np.arange(len(features)), features] = thresholds + delta
        rows.append(x)
    return t.quantize(np.vstack(rows)[:MAX_PROBE_EVENTS])


def split_nodes(forest: Forest) -> tuple[np.ndarray, np.ndarray]:
    """Feature and threshold of every real split of a forest (padding excluded)."""
    real = np.isfinite(forest.threshold)
    return forest.feature[real], forest.threshold[real]


def _pred_leaf(booster, x: np.ndarray) -> np.ndarray:
    import xgboost as xgb  # heavy: imported only where needed

    return booster.predict(xgb.DMatrix(np.asarray(x, dtype=np.float32)), pred_leaf=True).astype(np.int64).reshape(len(x), -1)


def leaves_check(emulator: BdtEmulator, booster, sample: Sample) -> Comparison:
    return compare("leaves (firmware trees vs xgboost pred_leaf, firmware inputs)", emulator.leaves(sample.x),
                   _pred_leaf(booster, sample.x), sample=sample)


def conversion_check(booster, sample: Sample, run) -> Comparison:
    """Float conversion leaf by leaf: float32 test events (unquantised) plus each threshold and its float32 neighbours."""

    ensemble = from_booster(booster)
    forest = Forest.from_ensemble(ensemble)
    raw = [run.test_events["background"][:20_000]] if run is not None else [sample.x[:20_000]]
    features, thresholds = split_nodes(forest)
    thr = thresholds.astype(np.float32)
    for value in (np.nextafter(thr, np.float32(-np.inf)), thr, np.nextafter(thr, np.float32(np.inf))):
        x = np.zeros((len(features), ensemble["n_features"]), dtype=np.float32)
        x[np.arange(len(features)), features] = value
        raw.append(x[:MAX_PROBE_EVENTS])
    x = np.vstack(raw).astype(np.float32)
    return compare("conversion (converted trees vs xgboost pred_leaf, float32 inputs and thresholds ±1 ulp)",
                   forest.leaves(x), _pred_leaf(booster, x), inputs=x)


def vhdl_check(vhdl: FirmwareProject, sample: Sample, csim_out: np.ndarray, n_events: int, input_type):
    vt = vhdl.input_type
    pick = pick_events(sample, n_events)
    x = input_type.quantize(sample.x[pick])  # what the C-simulation's input conversion made of them
    if not np.array_equal(vt.quantize(x), x):
        return Check("vhdl (GHDL vs C-simulation)", False, {}, f"the VHDL type {vt} cannot hold the firmware inputs")
    n_scores = csim_out.shape[1]
    got = ghdl.simulate(vhdl.project_dir, vt.to_codes(x), n_scores) * vt.lsb
    return compare("vhdl (GHDL simulation vs C-simulation)", got, csim_out[pick], inputs=x, sample=sample.take(pick))

