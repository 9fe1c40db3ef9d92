"""`<challenger run>/retrain/comparison.json`: what `l1ml retrain` compared, found and decided."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from l1ml.documents import Document, Info

COMPARISON = "comparison.json"
TABLE = "comparison.txt"
OUT_DIR = "retrain"


class Measured(BaseModel):
    """A value and its standard error."""

    model_config = ConfigDict(extra="forbid")
    value: float
    error: float


class RateRow(BaseModel):
    """The threshold a model gets for one target rate on the new test background (an event fires when score > it)."""

    model_config = ConfigDict(extra="forbid")
    rate_khz: float
    threshold: float
    threshold_bits: int | None  # the score type's integer code, when the scores are the firmware's
    background_pass: int
    achieved_rate_khz: float


class SignalResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_test: int
    auc: Measured
    efficiency: dict[str, Measured]  # by rate, as f"{rate:g}"


class ModelResult(BaseModel):
    """One model scored on the new test events."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["champion", "challenger"]
    run_dir: str
    spec: str  # what named it: a registry spec NAME@ALIAS, or the run folder
    model_version: Info | None = None  # the registry's version (name, version, aliases) when found there
    scores: str  # what the scores come from: a firmware emulator, or the fallback and why
    firmware_exact: bool  # the scores are the firmware's, bit for bit (its emulator)
    score_type: str
    thresholds: list[RateRow]
    signals: dict[str, SignalResult]


class SignalVerdict(BaseModel):
    """The rule's view of one signal at the target rate (challenger - champion)."""

    model_config = ConfigDict(extra="forbid")
    chosen: bool  # one of promotion.signals: it may carry a promotion
    difference: float
    sigma: float  # difference / sqrt(err_champion**2 + err_challenger**2)
    tolerance: float
    significant: bool  # chosen and sigma >= min_significance
    beyond_tolerance: bool  # difference < -tolerance: lost more than allowed


class Gate(BaseModel):
    """A condition on the challenger alone (verify, budget): ok True/False, or None when it cannot tell."""

    model_config = ConfigDict(extra="forbid")
    ok: bool | None
    summary: str
    details: Info = Field(default_factory=dict)


class DecisionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["promote", "keep champion", "refused"]
    reason: str
    line: str  # the outcome line the command prints last
    signals: dict[str, SignalVerdict]


class RetrainComparison(Document):
    """`retrain/comparison.json` (`l1ml retrain`): champion and challenger scored on the same new test events, the
    challenger's verify and budget, the promotion rule and its decision."""

    format: Literal["l1ml-retrain/1"] = "l1ml-retrain/1"
    created: str
    model: str
    rule: Info  # the config's promotion section, resolved
    rate_khz: float
    rates_khz: list[float]
    bx_rate_khz: float
    events: Info  # the new events file (path, SHA-256) and the test events by sample
    challenger: ModelResult
    champion: ModelResult | None
    verify: Gate
    budget: Gate
    decision: DecisionRecord
    promotion: Info | None = None  # with --promote: the delivery, the registered version and the alias set
    seconds: dict[str, float] = Field(default_factory=dict)  # wall time of each stage
