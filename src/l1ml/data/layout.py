"""The ADC2021 event layout: 19 object slots of (pT, eta, phi, class) per event.

Slot 0 is the MET, slots 1-4 e/gamma, 5-8 muons and 9-18 jets; each block is pT-ordered and
zero-padded. Models take the 57 features left once the class column is dropped, flattened slot-major
(MET_pt, MET_eta, MET_phi, eg1_pt, ...), as the ADC2021 example code does.
"""

from __future__ import annotations

import numpy as np

N_SLOTS = 19
N_COLUMNS = 4
PT, ETA, PHI, CLASS = range(N_COLUMNS)

#: object type -> (first slot, number of slots, class code)
BLOCKS: dict[str, tuple[int, int, int]] = {
    "met": (0, 1, 1),
    "egamma": (1, 4, 2),
    "muon": (5, 4, 3),
    "jet": (9, 10, 4),
}
LABELS = {"met": "MET", "egamma": "e/γ", "muon": "μ", "jet": "jet"}

SLOT_CLASS = np.concatenate([np.full(n, code) for _, n, code in BLOCKS.values()])

PARTICLES_NAMES = np.array([b"Pt", b"Eta", b"Phi", b"Class"])
PARTICLES_CLASSES = np.array([b"MET_class_1", b"Four_Ele_class_2", b"Four_Mu_class_3", b"Ten_Jet_class_4"])

_PREFIX = {"met": "MET", "egamma": "eg", "muon": "mu", "jet": "jet"}


def feature_names() -> list[str]:
    """The 57 model input names in slot-major order."""
    names = []
    for kind, (_, n, _) in BLOCKS.items():
        for i in range(n):
            stem = _PREFIX[kind] if kind == "met" else f"{_PREFIX[kind]}{i + 1}"
            names += [f"{stem}_pt", f"{stem}_eta", f"{stem}_phi"]
    return names


def block(particles: np.ndarray, kind: str) -> np.ndarray:
    """The slots of one object type, shape (N, n_slots, 4)."""
    first, n, _ = BLOCKS[kind]
    return particles[:, first : first + n, :]


def multiplicity(particles: np.ndarray, kind: str) -> np.ndarray:
    """Objects of one type per event (slots with pT > 0)."""
    return np.count_nonzero(block(particles, kind)[:, :, PT] > 0, axis=1)


def to_features(particles: np.ndarray) -> np.ndarray:
    """(N, 19, 4) -> (N, 57): drop the class column and flatten slot-major."""
    return np.ascontiguousarray(particles[:, :, :CLASS]).reshape(len(particles), N_SLOTS * CLASS)
