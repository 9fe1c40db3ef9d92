"""Emulation of L1 trigger objects from a generator's visible final state.

Input: the visible final-state particles of one event (PDG id, pT, eta, phi). Output: one event in
the ADC2021 layout, (19, 4) rows of (pT, eta, phi, class).

- e/gamma: electrons and photons are clustered around the hardest remaining one within
  `cluster_dr` (as a calorimeter cluster merges a pi0's photons), then required to be isolated:
  (visible pT within `iso_dr` - cluster pT) / cluster pT <= `iso_max`.
- muons: final-state muons in the muon acceptance; optionally isolated.
- jets: the L1 calorimeter algorithm. Visible particles except muons (which leave little energy in
  the calorimeters) fill towers of 2π/72 in phi and `tower_eta_size` in eta; a tower of at least
  `seed_et` that is the maximum of the `window` x `window` towers around it seeds a jet whose ET is
  the sum of that window and whose position is the ET-weighted centre of it.
- MET: minus the vector sum of visible pT within `eta_max`, each component smeared by
  `resolution_sqrt_sumet` x sqrt(sum ET).
Every object's pT is smeared with its resolution, and eta/phi with theirs, before the pT threshold
and acceptance cuts and the pT ordering.
"""

from __future__ import annotations

import numpy as np

from l1ml.config.data import EgammaConfig, JetConfig, L1Config, MetConfig, MuonConfig, Resolution
from l1ml.data.layout import BLOCKS, N_COLUMNS, N_SLOTS

N_PHI_TOWERS = 72
TWO_PI = 2.0 * np.pi


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Angles mapped into [-pi, pi)."""
    return (np.asarray(phi) + np.pi) % TWO_PI - np.pi


def delta_r(eta1: float, phi1: float, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    return np.hypot(eta2 - eta1, wrap_phi(phi2 - phi1))


def emulate_event(pid: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, cfg: L1Config,
                  rng: np.random.Generator) -> np.ndarray:
    """One event in the ADC2021 layout from its visible final-state particles."""
    out = np.zeros((N_SLOTS, N_COLUMNS), dtype=np.float64)
    abs_id = np.abs(pid)
    objects = {
        "met": met(pt, eta, phi, abs_id, cfg.met, rng),
        "egamma": egamma(pt, eta, phi, abs_id, cfg.egamma, rng),
        "muon": muons(pt, eta, phi, abs_id, cfg.muon, rng),
        "jet": jets(pt[abs_id != 13], eta[abs_id != 13], phi[abs_id != 13], cfg.jet, rng),
    }
    for kind, (first, n, code) in BLOCKS.items():
        obj = objects[kind]
        obj = obj[np.argsort(-obj[:, 0], kind="stable")][:n]
        out[first : first + len(obj), :3] = obj
        out[first : first + len(obj), 3] = code
    return out


def _smear_pt(pt: np.ndarray, res: Resolution, rng: np.random.Generator) -> np.ndarray:
    sigma = np.sqrt(res.stochastic**2 / np.maximum(pt, 1e-9) + res.constant**2)
    return pt * np.maximum(1.0 + sigma * rng.standard_normal(len(pt)), 0.0)


def _smear_and_select(pt, eta, phi, pt_res, eta_res, phi_res, pt_min, eta_max, rng) -> np.ndarray:
    """Smear, then keep objects above threshold and inside the acceptance. Returns (n, 3) rows."""
    pt = _smear_pt(pt, pt_res, rng)
    eta = eta + eta_res * rng.standard_normal(len(eta))
    phi = wrap_phi(phi + phi_res * rng.standard_normal(len(phi)))
    keep = (pt >= pt_min) & (np.abs(eta) < eta_max)
    return np.column_stack([pt[keep], eta[keep], phi[keep]])


def _relative_isolation(pt_obj, eta_obj, phi_obj, pt, eta, phi, cone) -> float:
    in_cone = delta_r(eta_obj, phi_obj, eta, phi) < cone
    return (pt[in_cone].sum() - pt_obj) / pt_obj


def egamma(pt, eta, phi, abs_id, cfg: EgammaConfig, rng) -> np.ndarray:
    is_eg = ((abs_id == 11) | (abs_id == 22)) & (np.abs(eta) < cfg.eta_max + cfg.cluster_dr)
    e_pt, e_eta, e_phi = pt[is_eg], eta[is_eg], phi[is_eg]
    order = np.argsort(-e_pt, kind="stable")
    e_pt, e_eta, e_phi = e_pt[order], e_eta[order], e_phi[order]
    free = np.ones(len(e_pt), dtype=bool)
    seed_min = 0.5 * cfg.pt_min
    clusters = []
    for i in range(len(e_pt)):
        if e_pt[i] < seed_min:
            break  # sorted: no harder seed left
        if not free[i]:
            continue
        members = free & (delta_r(e_eta[i], e_phi[i], e_eta, e_phi) < cfg.cluster_dr)
        free &= ~members
        c_pt = e_pt[members].sum()
        if cfg.iso_max is not None:
            if _relative_isolation(c_pt, e_eta[i], e_phi[i], pt, eta, phi, cfg.iso_dr) > cfg.iso_max:
                continue
        clusters.append((c_pt, e_eta[i], e_phi[i]))
    c = np.array(clusters, dtype=np.float64).reshape(-1, 3)
    return _smear_and_select(c[:, 0], c[:, 1], c[:, 2], cfg.pt_resolution, cfg.eta_resolution,
                             cfg.phi_resolution, cfg.pt_min, cfg.eta_max, rng)


def muons(pt, eta, phi, abs_id, cfg: MuonConfig, rng) -> np.ndarray:
    is_mu = (abs_id == 13) & (pt >= 0.5 * cfg.pt_min)
    m_pt, m_eta, m_phi = pt[is_mu], eta[is_mu], phi[is_mu]
    if cfg.iso_max is not None and len(m_pt):
        iso = np.array([_relative_isolation(m_pt[i], m_eta[i], m_phi[i], pt, eta, phi, cfg.iso_dr)
                        for i in range(len(m_pt))])
        keep = iso <= cfg.iso_max
        m_pt, m_eta, m_phi = m_pt[keep], m_eta[keep], m_phi[keep]
    return _smear_and_select(m_pt, m_eta, m_phi, cfg.pt_resolution, cfg.eta_resolution, cfg.phi_resolution,
                             cfg.pt_min, cfg.eta_max, rng)


def tower_grid(cfg: JetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Tower centres in eta and in phi."""
    n_eta = int(round(2 * cfg.calo_eta_max / cfg.tower_eta_size))
    eta_edges = np.linspace(-cfg.calo_eta_max, cfg.calo_eta_max, n_eta + 1)
    phi_width = TWO_PI / N_PHI_TOWERS
    return 0.5 * (eta_edges[1:] + eta_edges[:-1]), -np.pi + phi_width * (np.arange(N_PHI_TOWERS) + 0.5)


def fill_towers(pt, eta, phi, cfg: JetConfig) -> np.ndarray:
    """ET per tower, shape (n_eta, 72)."""
    eta_centres, _ = tower_grid(cfg)
    n_eta = len(eta_centres)
    inside = np.abs(eta) < cfg.calo_eta_max
    i_eta = np.clip(((eta[inside] + cfg.calo_eta_max) / (2 * cfg.calo_eta_max) * n_eta).astype(np.int64), 0, n_eta - 1)
    i_phi = (((phi[inside] + np.pi) % TWO_PI) / TWO_PI * N_PHI_TOWERS).astype(np.int64) % N_PHI_TOWERS
    et = np.bincount(i_eta * N_PHI_TOWERS + i_phi, weights=pt[inside], minlength=n_eta * N_PHI_TOWERS)
    return et.reshape(n_eta, N_PHI_TOWERS)


def find_jets(towers: np.ndarray, cfg: JetConfig) -> np.ndarray:
    """Sliding-window jets on a tower grid, before smearing: rows of (ET, eta, phi)."""
    eta_centres, phi_centres = tower_grid(cfg)
    h = cfg.window // 2
    # eta: zero beyond the calorimeter; phi: the detector is a cylinder
    padded = np.pad(np.pad(towers, ((0, 0), (h, h)), mode="wrap"), ((h, h), (0, 0)))
    seeds = np.argwhere(towers >= max(cfg.seed_et, 1e-12))
    found = []
    for ie, ip in seeds:
        win = padded[ie : ie + cfg.window, ip : ip + cfg.window]
        centre = win[h, h]
        # local maximum; a tie goes to the tower that comes first (lower eta, then lower phi index)
        before = np.zeros_like(win, dtype=bool)
        before[:h, :] = True
        before[h, :h] = True
        if np.any(win > centre) or np.any(win[before] == centre):
            continue
        et = win.sum()
        d_eta = np.arange(-h, h + 1) * (eta_centres[1] - eta_centres[0])
        d_phi = np.arange(-h, h + 1) * (TWO_PI / N_PHI_TOWERS)
        j_eta = eta_centres[ie] + (win.sum(axis=1) @ d_eta) / et
        j_phi = wrap_phi(phi_centres[ip] + (win.sum(axis=0) @ d_phi) / et)
        found.append((et, j_eta, j_phi))
    return np.array(found, dtype=np.float64).reshape(-1, 3)


def jets(pt, eta, phi, cfg: JetConfig, rng) -> np.ndarray:
    raw = find_jets(fill_towers(pt, eta, phi, cfg), cfg)
    return _smear_and_select(raw[:, 0], raw[:, 1], raw[:, 2], cfg.pt_resolution, 0.0, 0.0, cfg.pt_min,
                             cfg.eta_max, rng)


def met(pt, eta, phi, abs_id, cfg: MetConfig, rng) -> np.ndarray:
    used = np.abs(eta) < cfg.eta_max
    if not cfg.include_muons:
        used &= abs_id != 13
    mex = -np.sum(pt[used] * np.cos(phi[used]))
    mey = -np.sum(pt[used] * np.sin(phi[used]))
    sigma = cfg.resolution_sqrt_sumet * np.sqrt(pt[used].sum())
    mex, mey = mex + sigma * rng.standard_normal(), mey + sigma * rng.standard_normal()
    return np.array([[np.hypot(mex, mey), 0.0, np.arctan2(mey, mex)]])
