"""Config of `l1ml train`: the data, the model, its quantisation, the training and the evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SerializerFunctionWrapHandler, ValidationInfo, field_validator, model_serializer, model_validator

from l1ml.config.hw import list_targets
from l1ml.config.loader import StrictModel
from l1ml.config.types import BdtInputTypeStr, FixedTypeStr, Name, NetworkTypeStr
from l1ml.quantize.fixedpoint import FLOAT32_EXACT_WIDTH

LUT_ACTIVATIONS = ("sigmoid", "tanh", "softmax", "softplus", "elu", "selu", "swish", "gelu", "exponential")
ACTIVATIONS = ("relu", "linear")


class DataSelection(StrictModel):
    events: str = Field(description="a data config (.yaml, generated or reused from its cache) or an event file (.h5)")
    background: str = Field("background", description="the sample trained on (autoencoders) and that sets the rate thresholds")
    signals: list[str] = Field(min_length=1, description="samples to evaluate (and, for a BDT, the first one to train against)")
    max_events: int | None = Field(None, ge=10, description="read at most this many events of each sample")
    split: dict[Literal["train", "validation", "test"], float] = Field(
        default_factory=lambda: {"train": 0.5, "validation": 0.1, "test": 0.4},
        description="fractions of the background; signals are used for evaluation (BDT: split the same way)",
    )

    @field_validator("split")
    @classmethod
    def _split(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"train", "validation", "test"} or any(f <= 0 for f in v.values()):
            raise ValueError("give positive fractions for train, validation and test")
        if abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError(f"the split fractions add up to {sum(v.values()):g}, not 1")
        return v


class DenseLayer(StrictModel):
    type: Literal["dense"] = "dense"
    units: int = Field(ge=1, le=4096)
    activation: str = "relu"
    batchnorm: bool = False
    weight: NetworkTypeStr | None = Field(None, description="kernel type; default: quantization.weight")
    bias: NetworkTypeStr | None = Field(None, description="bias type; default: quantization.bias")
    result: NetworkTypeStr | None = Field(None, description="output type after the activation; default: quantization.result")

    @field_validator("activation")
    @classmethod
    def _activation(cls, v: str) -> str:
        if v in LUT_ACTIVATIONS:
            raise ValueError(f"activation {v!r} is computed with a lookup table in firmware and is not bit-exact; "
                             f"use one of: {', '.join(ACTIVATIONS)}")
        if v not in ACTIVATIONS:
            raise ValueError(f"unknown activation {v!r}; use one of: {', '.join(ACTIVATIONS)}")
        return v


class Quantization(StrictModel):
    """Default fixed-point types (QKeras quantisers round to nearest even and saturate)."""

    input: NetworkTypeStr = Field("ap_fixed<12,4>", description="the normalised input as the firmware receives it")
    weight: NetworkTypeStr = "ap_fixed<8,2>"
    bias: NetworkTypeStr = "ap_fixed<8,2>"
    result: NetworkTypeStr = Field("ap_fixed<12,5>", description="layer outputs; relu layers use the unsigned type of the same W, I")
    score_diff: NetworkTypeStr = Field("ap_fixed<10,4>", description="autoencoder: input - reconstruction, before squaring")
    score_square: NetworkTypeStr = Field("ap_ufixed<16,8>", description="each squared term before the sum")
    score: NetworkTypeStr = Field("ap_ufixed<18,14>", description="the anomaly score the firmware outputs")


class Pruning(StrictModel):
    sparsity: float = Field(gt=0, lt=1, description="fraction of weights set to zero by the end of training")
    begin_epoch: int = Field(0, ge=0)


class NetworkModel(StrictModel):
    kind: Literal["dense_ae", "vae_encoder"]
    encoder: list[DenseLayer] = Field(min_length=1)
    latent: int = Field(3, ge=1, le=256)
    decoder: list[DenseLayer] | Literal["mirror"] = Field("mirror", description="layers after the latent space; 'mirror' reverses the encoder")
    score: Literal["sum", "mean"] = Field("sum", description="dense_ae: sum of squared differences, or mean (sum x 2^-k, k = ceil(log2(n)))")
    beta: float = Field(1.0, ge=0, description="vae_encoder: weight of the KL term")


class Training(StrictModel):
    epochs: int = Field(20, ge=1, le=10000, description="quantisation-aware training epochs")
    float_epochs: int | None = Field(None, ge=1, description="epochs of the float reference model; default: epochs")
    init_from_float: bool = Field(False, description="start quantisation-aware training from the trained float model (pre-training)")
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    pruning: Pruning | None = None


class BdtModel(StrictModel):
    kind: Literal["bdt"]
    task: Literal["classification", "regression"] = Field(
        "classification", description="classification: logistic loss, the score is the raw margin (no sigmoid); "
                                      "regression: squared error on the 0/1 labels")
    n_estimators: int = Field(50, ge=1, le=5000)
    max_depth: int = Field(3, ge=1, le=12)
    learning_rate: float = Field(0.3, gt=0, le=1)
    input: BdtInputTypeStr | None = Field(None, description="default: chosen from the training data ranges")
    score: FixedTypeStr | None = Field(None, description="default: chosen from the range of the sum of leaves")
    input_bits: int = Field(16, ge=2, le=FLOAT32_EXACT_WIDTH,
                            description="width of the input type chosen from the data (xgboost compares inputs as float32)")
    score_bits: int = Field(18, ge=2, le=32, description="width of the score type chosen from the leaves")


def _below_bx_rate(rate: float, info: ValidationInfo) -> float:
    """A trigger rate below the bunch-crossing rate of the fields validated before it (bunches, revolution_khz)."""
    if "bunches" in info.data and "revolution_khz" in info.data:
        bx = info.data["bunches"] * info.data["revolution_khz"]
        if rate >= bx:
            raise ValueError(f"a trigger rate must be below the bunch-crossing rate, {info.data['bunches']} filled bunches x "
                             f"{info.data['revolution_khz']:g} kHz = {bx:g} kHz, at which every crossing fires")
    return rate


class Evaluation(StrictModel):
    bunches: int = Field(2544, ge=1, le=3564, description="filled bunches")
    revolution_khz: float = Field(11.2456, gt=0)
    rates_khz: list[Annotated[float, Field(gt=0), AfterValidator(_below_bx_rate)]] = Field(
        min_length=1, description="target trigger rates, below the bunch-crossing rate (bunches x revolution_khz)")
    min_background_events: int = Field(10, ge=1, description="error if fewer test background events pass a target rate")

    @field_validator("rates_khz")
    @classmethod
    def _sorted(cls, v: list[float]) -> list[float]:
        return sorted(v)

    @property
    def bx_rate_khz(self) -> float:
        return self.bunches * self.revolution_khz


class VerifyConfig(StrictModel):
    """What `l1ml verify` accepts: the firmware is always compared bit for bit; its physics against the float model within these."""

    auc_tolerance: float = Field(0.02, ge=0, le=1, description="largest |AUC(firmware) - AUC(float)| per signal")
    efficiency_tolerance: float = Field(0.05, ge=0, le=1, description="largest |efficiency difference| per signal and rate")
    min_events: int = Field(100_000, ge=0, description="random inputs on the input grid fill the verified sample up to this")
    vhdl_events: int = Field(200, ge=1, description="events simulated with GHDL (BDT VHDL)")


class FirmwareConfig(StrictModel):
    """How `l1ml convert` builds the firmware of this model (command-line options override)."""

    target: str = Field("vu13p", description="an FPGA target of hw/ (name or YAML path)")
    backend: Literal["vitis", "vivado", "xilinxhls", "vhdl"] | None = Field(
        None, description="networks: hls4ml's vitis (default) or vivado; BDTs: conifer's xilinxhls or vhdl (default: both)")
    reuse_factor: int = Field(1, ge=1, le=4096, description="hls4ml ReuseFactor: multipliers shared by this many products")
    clock_period_ns: float | None = Field(None, gt=0, description="default: the target's first clock period")
    synth_mem_gb: float | None = Field(None, gt=0, description="memory request of `l1ml synth` HLS jobs [default: estimated from the model]")

    @field_validator("target")
    @classmethod
    def _known_target(cls, v: str) -> str:
        if not Path(v).suffix and v not in list_targets():
            raise ValueError(f"unknown hw target; known targets: {', '.join(list_targets())} (or the path of a target .yaml file)")
        return v


#: What `promotion.limits` can bound, and where an estimate gives it: a field of EstimateFigures, or a key of its details.
COST_FIGURES = {"lut": "lut", "ff": "ff", "dsp": "dsp", "bram_18k": "bram_18k", "latency_cycles": "latency_cycles",
                "latency_ns": "latency_ns", "bops": "bops", "multiplications": "details.multiplications",
                "adders": "details.adders", "comparators": "details.comparators_total"}


class CostLimits(StrictModel):
    """Upper bounds on what `l1ml estimate` gives (each checked against every method that gives it)."""

    lut: int | None = Field(None, ge=0)
    ff: int | None = Field(None, ge=0)
    dsp: int | None = Field(None, ge=0)
    bram_18k: int | None = Field(None, ge=0)
    latency_cycles: int | None = Field(None, ge=0)
    latency_ns: float | None = Field(None, ge=0)
    bops: int | None = Field(None, ge=0, description="bit operations (networks, counts method)")
    multiplications: int | None = Field(None, ge=0, description="networks, counts method")
    adders: int | None = Field(None, ge=0, description="counts method")
    comparators: int | None = Field(None, ge=0, description="BDTs, counts method")

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Promotion(StrictModel):
    """`l1ml retrain`: when a challenger trained on new data replaces the champion. Both are scored by their firmware
    (bit-exact emulators) on the same new test events, each with its threshold for `rate_khz` set on the new background.
    The outcome is `refused` if the challenger's verify failed (`require_verify`) or its cost is over `budget`; else
    `keep champion` if any signal's efficiency drops by more than its tolerance, or no chosen signal improves by
    `min_significance` sigma (sigma = sqrt(err_champion**2 + err_challenger**2), binomial errors); else `promote`."""

    rate_khz: float = Field(gt=0, description="the target rate the efficiencies are compared at; one of evaluation.rates_khz")
    signals: list[str] | None = Field(None, min_length=1, description="signals that must improve; default: all of data.signals")
    improve_on: Literal["any", "all"] = Field("any", description="promote when any (or all) of `signals` improve significantly")
    min_significance: float = Field(2.0, ge=0, description="improvement needed, in sigma of the efficiency difference")
    tolerance: float = Field(0.02, ge=0, le=1, description="largest efficiency loss allowed for any signal of data.signals (absolute)")
    tolerance_per_signal: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, description="per-signal overrides of `tolerance`")
    require_verify: bool = Field(True, description="refuse a challenger whose `l1ml verify` failed")
    budget: Literal["estimate", "synthesis", "none"] = Field(
        "estimate", description="estimate: `l1ml estimate` (estimate_methods) within the hw target and `limits`; "
                                "synthesis: a finished HLS synthesis of the challenger's firmware within the hw target's budgets")
    estimate_methods: list[Literal["counts", "rtl", "bdt"]] = Field(
        default_factory=lambda: ["counts"], min_length=1,
        description="counts: exact operation counts (instant); rtl (networks) / bdt (BDTs): Yosys synthesis of the RTL/VHDL")
    limits: CostLimits = Field(default_factory=CostLimits, description="upper bounds on the estimate's figures")

    def tolerance_for(self, signal: str) -> float:
        return self.tolerance_per_signal.get(signal, self.tolerance)

    @model_validator(mode="after")
    def _budget_comparable(self) -> Promotion:
        if self.budget == "estimate" and set(self.estimate_methods) == {"counts"} and not self.limits.given():
            raise ValueError("the counts method gives operation counts, not resources, so nothing would be compared with "
                             "a budget: give promotion.limits (e.g. bops, multiplications, comparators), add rtl or bdt to "
                             "promotion.estimate_methods, or set promotion.budget: none")
        return self


class TrainConfig(StrictModel):
    """`l1ml train` config."""

    name: Name
    seed: int = Field(ge=0, lt=2**31)
    data: DataSelection
    model: NetworkModel | BdtModel = Field(discriminator="kind")
    quantization: Quantization = Quantization()
    training: Training = Training()
    evaluation: Evaluation
    firmware: FirmwareConfig = FirmwareConfig()
    verify: VerifyConfig = VerifyConfig()
    promotion: Promotion | None = Field(None, description="the rule of `l1ml retrain` (champion against challenger)")

    @field_validator("promotion")
    @classmethod
    def _promotion_fits(cls, v: Promotion | None, info: ValidationInfo) -> Promotion | None:
        if v is None:
            return v
        if "evaluation" in info.data and not any(abs(v.rate_khz - r) < 1e-9 for r in info.data["evaluation"].rates_khz):
            rates = ", ".join(f"{r:g}" for r in info.data["evaluation"].rates_khz)
            raise ValueError(f"promotion.rate_khz {v.rate_khz:g} is not one of evaluation.rates_khz ({rates})")
        if "data" in info.data:
            known = info.data["data"].signals
            for key, names in (("signals", v.signals or []), ("tolerance_per_signal", list(v.tolerance_per_signal))):
                unknown = [n for n in names if n not in known]
                if unknown:
                    raise ValueError(f"promotion.{key}: {unknown[0]!r} is not one of data.signals ({', '.join(known)})")
        if "model" in info.data:
            wrong = "rtl" if isinstance(info.data["model"], BdtModel) else "bdt"
            if wrong in v.estimate_methods:
                raise ValueError(f"promotion.estimate_methods: {wrong!r} does not apply to this model (rtl: networks, bdt: BDTs)")
        return v

    @model_serializer(mode="wrap")
    def _without_absent_promotion(self, handler: SerializerFunctionWrapHandler) -> dict:
        # `promotion: None` is left out, so a config without the section dumps (and hashes: train.run.config_hash) as before it existed
        data = handler(self)
        if self.promotion is None:
            data.pop("promotion", None)
        return data

    @model_validator(mode="after")
    def _network_only(self) -> TrainConfig:
        if isinstance(self.model, BdtModel) and self.training.pruning is not None:
            raise ValueError("pruning applies to networks, not to a BDT")
        backend = self.firmware.backend
        if backend is not None and (backend in ("xilinxhls", "vhdl")) != isinstance(self.model, BdtModel):
            kind = "a BDT: xilinxhls or vhdl (conifer)" if isinstance(self.model, BdtModel) else "a network: vitis or vivado (hls4ml)"
            raise ValueError(f"firmware.backend {backend!r} does not fit the model; for {kind}")
        return self
