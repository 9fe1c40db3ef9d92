"""L1 object emulation on hand-made final states with known answers (smearing switched off)."""

from __future__ import annotations

import numpy as np
import pytest

from l1ml.config.data import L1Config
from l1ml.data.l1emu import emulate_event, fill_towers, find_jets, wrap_phi

NO_SMEAR = {"pt_resolution": {"stochastic": 0, "constant": 0}}


def config(**overrides) -> L1Config:
    cfg = {
        "egamma": {**NO_SMEAR, "eta_resolution": 0, "phi_resolution": 0},
        "muon": {**NO_SMEAR, "eta_resolution": 0, "phi_resolution": 0},
        "jet": dict(NO_SMEAR),
        "met": {"resolution_sqrt_sumet": 0},
    }
    for key, value in overrides.items():
        cfg[key].update(value)
    return L1Config.model_validate(cfg)


def emulate(particles, cfg=None):
    a = np.array(particles, dtype=np.float64).reshape(-1, 4)
    return emulate_event(a[:, 0].astype(int), a[:, 1], a[:, 2], a[:, 3], cfg or config(), np.random.default_rng(1))


def test_isolated_electron_and_muon():
    ev = emulate([(11, 40.0, 0.5, 1.0), (-13, 25.0, -1.0, -2.0)])
    assert ev[1].tolist() == [40.0, 0.5, 1.0, 2.0]
    assert ev[5].tolist() == [25.0, -1.0, -2.0, 3.0]
    np.testing.assert_allclose(ev[0, :3], [np.hypot(40 * np.cos(1) + 25 * np.cos(-2), 40 * np.sin(1) + 25 * np.sin(-2)),
                                           0.0, np.arctan2(-(40 * np.sin(1) + 25 * np.sin(-2)),
                                                           -(40 * np.cos(1) + 25 * np.cos(-2)))])
    assert ev[0, 3] == 1.0
    # the electron is also a calorimeter jet; the muon is not
    assert ev[9, 0] == pytest.approx(40.0) and ev[10, 0] == 0


def test_zero_padding_and_classes():
    ev = emulate([(11, 40.0, 0.5, 1.0)])
    empty = ev[:, 0] == 0
    assert np.all(ev[empty] == 0)
    assert ev[0, 3] == 1


def test_photon_pair_merges_into_one_cluster():
    ev = emulate([(22, 20.0, 0.0, 0.0), (22, 10.0, 0.05, 0.02)])
    assert ev[1, 0] == pytest.approx(30.0) and ev[2, 0] == 0


def test_non_isolated_egamma_rejected():
    hadrons = [(211, 15.0, 0.1, 0.15), (-211, 10.0, -0.1, 0.1)]
    ev = emulate([(22, 20.0, 0.0, 0.0), *hadrons])
    assert ev[1, 0] == 0
    ev = emulate([(22, 20.0, 0.0, 0.0), *hadrons], config(egamma={"iso_max": None}))
    assert ev[1, 0] == pytest.approx(20.0)


def test_acceptance_and_thresholds():
    ev = emulate([(11, 40.0, 3.2, 0.0), (13, 30.0, 2.5, 0.0), (13, 2.0, 0.0, 1.0)])
    assert ev[1, 0] == 0 and ev[5, 0] == 0


def test_pt_ordering_and_truncation():
    muons = [(13, float(pt), 0.0, 0.5 * i - 2) for i, pt in enumerate([5, 50, 20, 35, 10, 8])]
    ev = emulate(muons)
    assert ev[5:9, 0].tolist() == [50, 35, 20, 10]


def test_jet_from_one_tower_and_window_sum():
    cfg = config()
    hadrons = [(211, 12.0, 1.0, 0.5), (211, 8.0, 1.05, 0.52), (22, 5.0, 1.2, 0.6), (211, 3.0, 2.5, -1.0)]
    ev = emulate(hadrons, cfg)
    # the first three lie within 9x9 towers of the hardest; the fourth is far and below threshold on its own
    assert ev[9, 0] == pytest.approx(25.0) and ev[10, 0] == 0
    # ET-weighted centre of towers: within a tower of the particles' ET-weighted centre
    assert abs(ev[9, 1] - 1.05) < 0.087 and abs(ev[9, 2] - 0.52) < 2 * np.pi / 72


def test_two_separated_jets():
    ev = emulate([(211, 50.0, -1.5, 0.0), (211, 30.0, 1.5, 3.0)])
    assert ev[9:11, 0].tolist() == pytest.approx([50.0, 30.0])


def test_jet_across_phi_boundary_is_one_jet():
    ev = emulate([(211, 20.0, 0.3, np.pi - 0.02), (211, 15.0, 0.3, -np.pi + 0.02)])
    assert ev[9, 0] == pytest.approx(35.0) and ev[10, 0] == 0
    assert abs(ev[9, 2]) > np.pi - 0.1


def test_equal_towers_give_one_jet():
    cfg = config().jet
    towers = np.zeros((115, 72))
    towers[50, 10] = towers[51, 10] = 10.0
    jets = find_jets(towers, cfg)
    assert len(jets) == 1 and jets[0, 0] == pytest.approx(20.0)


def test_tower_filling_conserves_et():
    rng = np.random.default_rng(3)
    pt, eta, phi = rng.exponential(5, 500), rng.uniform(-6, 6, 500), rng.uniform(-np.pi, np.pi, 500)
    towers = fill_towers(pt, eta, phi, config().jet)
    assert towers.sum() == pytest.approx(pt[np.abs(eta) < 5].sum())


def test_calorimeter_met_excludes_muons():
    ev = emulate([(13, 40.0, 0.0, 0.0), (211, 40.0, 0.0, np.pi)], config(met={"include_muons": False}))
    assert ev[0, 0] == pytest.approx(40.0)
    ev = emulate([(13, 40.0, 0.0, 0.0), (211, 40.0, 0.0, np.pi)])
    assert ev[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_smearing_width():
    cfg = config(muon={"pt_resolution": {"stochastic": 0, "constant": 0.1}})
    rng = np.random.default_rng(0)
    pts = [emulate_event(np.array([13]), np.array([50.0]), np.array([0.0]), np.array([0.0]), cfg, rng)[5, 0]
           for _ in range(2000)]
    assert np.std(pts) / 50 == pytest.approx(0.1, rel=0.1)


def test_wrap_phi():
    assert wrap_phi(np.array([np.pi + 0.1, -np.pi - 0.1, 0.3])) == pytest.approx([-np.pi + 0.1, np.pi - 0.1, 0.3])
