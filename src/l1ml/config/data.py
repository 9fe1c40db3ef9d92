"""Config of `l1ml data generate`: samples of Pythia 8 processes and the L1 object emulation."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from l1ml.config.loader import StrictModel
from l1ml.config.types import Name

ETA_ACCEPTANCE = 5.0  # |eta| of the L1 objects an event file may hold (the reader refuses beyond it)
SQRT_S_TEV = (0.9, 14.0)  # the LHC's proton-proton energies: its lowest (2009) to its design energy

EtaMax = Annotated[float, Field(gt=0, le=ETA_ACCEPTANCE, description="|eta| acceptance, at most 5 (event files are read within it)")]


class Resolution(StrictModel):
    """Relative pT resolution sigma(pT)/pT = sqrt((stochastic / sqrt(pT/GeV))^2 + constant^2)."""

    stochastic: float = Field(0.0, ge=0)
    constant: float = Field(0.0, ge=0)


class EgammaConfig(StrictModel):
    """L1 e/gamma: e and gamma clustered within `cluster_dr`, isolated, smeared, in the ECAL acceptance."""

    pt_min: float = Field(3.0, ge=0, description="GeV")
    eta_max: EtaMax = 3.0
    cluster_dr: float = Field(0.1, gt=0, description="e/gamma within this ΔR of the seed join its cluster")
    iso_dr: float = Field(0.3, gt=0, description="isolation cone")
    iso_max: float | None = Field(0.5, ge=0, description="max (visible pT in cone - cluster pT)/cluster pT; null: no isolation")
    pt_resolution: Resolution = Resolution(stochastic=0.10, constant=0.02)
    eta_resolution: float = Field(0.01, ge=0)
    phi_resolution: float = Field(0.01, ge=0)


class MuonConfig(StrictModel):
    """L1 muons: final-state muons in the muon-system acceptance, smeared."""

    pt_min: float = Field(3.0, ge=0, description="GeV")
    eta_max: EtaMax = 2.4
    iso_dr: float = Field(0.3, gt=0)
    iso_max: float | None = Field(None, ge=0, description="relative isolation cut; null (default): L1 muons are not isolated")
    pt_resolution: Resolution = Resolution(constant=0.10)
    eta_resolution: float = Field(0.01, ge=0)
    phi_resolution: float = Field(0.01, ge=0)


class JetConfig(StrictModel):
    """L1 calorimeter jets: towers of (2π/72 in φ) x `tower_eta_size`, a square sliding window around local maxima."""

    pt_min: float = Field(15.0, ge=0, description="GeV")
    eta_max: EtaMax = 4.0
    calo_eta_max: EtaMax = Field(5.0, description="calorimeter acceptance of the towers, at most 5")
    tower_eta_size: float = Field(0.0870, gt=0)
    window: int = Field(9, ge=1, description="window size in towers (odd)")
    seed_et: float = Field(4.0, ge=0, description="GeV, minimum tower ET of a jet seed")
    pt_resolution: Resolution = Resolution(stochastic=1.0, constant=0.05)

    @field_validator("window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("the window must have an odd number of towers so that it centres on its seed")
        return v


class MetConfig(StrictModel):
    """MET from the visible final state within `eta_max`."""

    eta_max: float = Field(5.0, gt=0)
    include_muons: bool = Field(True, description="false: calorimeter-only MET (muons are invisible to it)")
    resolution_sqrt_sumet: float = Field(0.5, ge=0, description="sigma of each MET component = this x sqrt(sum ET / GeV)")


class L1Config(StrictModel):
    egamma: EgammaConfig = EgammaConfig()
    muon: MuonConfig = MuonConfig()
    jet: JetConfig = JetConfig()
    met: MetConfig = MetConfig()


class ProcessConfig(StrictModel):
    process: str = Field(description="a process of the catalogue (see `l1ml data processes`), or 'custom'")
    fraction: float = Field(1.0, gt=0, le=1, description="share of the sample's events")
    pythia: list[str] = Field(default_factory=list, description="Pythia 8 settings added after the catalogue's")

    @model_validator(mode="after")
    def _custom(self) -> ProcessConfig:
        # the names of the catalogue are checked where it lives, by l1ml.data.processes.check_processes
        if self.process == "custom" and not self.pythia:
            raise ValueError("a 'custom' process needs its Pythia settings under 'pythia'")
        return self


class SampleConfig(StrictModel):
    events: int = Field(ge=1, le=100_000_000)
    processes: list[ProcessConfig] = Field(min_length=1)
    lepton_filter_pt: float | None = Field(
        None, ge=0, description="keep only events whose leading L1 e/gamma or muon has pT >= this (GeV), as ADC2021 does"
    )

    @field_validator("processes")
    @classmethod
    def _fractions(cls, v: list[ProcessConfig]) -> list[ProcessConfig]:
        total = sum(p.fraction for p in v)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"the process fractions add up to {total:g}, not 1")
        return v


class PileupConfig(StrictModel):
    mean: float = Field(0.0, ge=0, le=200, description="mean number of minimum-bias interactions overlaid (Poisson)")


class DataConfig(StrictModel):
    """`l1ml data generate` config."""

    name: Name
    seed: int = Field(ge=0, lt=2**31)
    sqrt_s_tev: float = Field(13.6, description="proton-proton collision energy (TeV), within the LHC's range",
                              json_schema_extra={"minimum": SQRT_S_TEV[0], "maximum": SQRT_S_TEV[1]})
    chunk_events: int = Field(500, ge=1, description="events per generator job; part of the seed scheme (the number of parallel processes is not)")
    max_tries_per_event: int = Field(200, ge=1, description="give up when a filter keeps fewer than 1 in this many events")
    pileup: PileupConfig = PileupConfig()
    l1: L1Config = L1Config()
    samples: dict[Name, SampleConfig] = Field(min_length=1)

    @field_validator("sqrt_s_tev")
    @classmethod
    def _lhc_energy(cls, v: float) -> float:
        low, high = SQRT_S_TEV
        if not low <= v <= high:
            raise ValueError(f"outside the LHC's range of {low:g} to {high:g} TeV that the generator is made for (its "
                             "processes, L1 emulation and pile-up are the LHC's; Pythia fails to start at 1e6 TeV)")
        return v
