"""Catalogue of Pythia 8 processes: the ADC2021 background mix and its four benchmark signals.

Each entry is the list of Pythia settings that defines the hard process; a config can append more.
"""

from __future__ import annotations

from pathlib import Path

from l1ml.config.data import DataConfig
from l1ml.errors import L1mlError

#: name -> (description, Pythia 8 settings)
PROCESSES: dict[str, tuple[str, list[str]]] = {
    "W_lnu": (
        "W -> l nu (l = e, mu, tau), inclusive W production",
        ["WeakSingleBoson:ffbar2W = on", "24:onMode = off", "24:onIfAny = 11 13 15"],
    ),
    "Z_ll": (
        "Z/gamma* -> l l (l = e, mu, tau), m > 40 GeV",
        ["WeakSingleBoson:ffbar2gmZ = on", "23:onMode = off", "23:onIfAny = 11 13 15", "PhaseSpace:mHatMin = 40"],
    ),
    "QCD": (
        "QCD multijet, 2 -> 2 with pT-hat > 20 GeV",
        ["HardQCD:all = on", "PhaseSpace:pTHatMin = 20"],
    ),
    "ttbar": (
        "top-quark pair production, all decays",
        ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"],
    ),
    "minbias": (
        "minimum bias (non-diffractive inelastic), the bulk of the L1 input stream",
        ["SoftQCD:nonDiffractive = on"],
    ),
    "A_4l": (
        "neutral scalar A (50 GeV) -> Z* Z* -> 4 l (l = e, mu); Pythia's H2 stands in for A",
        [
            "Higgs:useBSM = on",
            "HiggsBSM:gg2H2 = on",
            "35:m0 = 50",
            "35:onMode = off",
            "35:onIfMatch = 23 23",
            "23:onMode = off",
            "23:onIfAny = 11 13",
            "23:mMin = 1",
        ],
    ),
    "LQ_btau": (
        "leptoquark (80 GeV, charge 2/3) -> b tau, pair and single production",
        ["LeptoQuark:all = on", "42:m0 = 80", "42:chargeType = 2", "42:oneChannel = 1 1.0 0 5 -15"],
    ),
    "h0_tautau": (
        "neutral scalar h0 (60 GeV) -> tau tau, gluon fusion",
        ["HiggsSM:gg2H = on", "25:m0 = 60", "25:onMode = off", "25:onIfMatch = 15 -15"],
    ),
    "hpm_taunu": (
        "charged scalar h+- (60 GeV) -> tau nu, f fbar' -> h+-",
        ["Higgs:useBSM = on", "HiggsBSM:ffbar2H+- = on", "37:m0 = 60", "37:onMode = off", "37:onIfAny = 15"],
    ),
}

#: Settings every generator instance gets before the process settings.
COMMON_SETTINGS = [
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Random:setSeed = on",
]


def check_processes(cfg: DataConfig, source: str | Path) -> None:
    """Every process a data config names is in the catalogue (or 'custom'); else one error naming file, key, value."""
    for sample, scfg in cfg.samples.items():
        for i, proc in enumerate(scfg.processes):
            if proc.process != "custom" and proc.process not in PROCESSES:
                raise L1mlError(f"unknown process; known: {', '.join(sorted(PROCESSES))}, custom", path=source,
                                key=f"samples.{sample}.processes.{i}.process", value=proc.process)
