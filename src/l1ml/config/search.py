"""Config of `l1ml search`: a train config plus a `search:` section (what to vary, what to optimise, within what) and
optional `segments:` (the same search for several selections of the data, each its own study).

    search:
      parameters:                       # dotted paths into the train config
        model.n_estimators: {int: [10, 100], step: 10}
        model.learning_rate: {float: [0.05, 0.5], log: true}
        model.encoder.length: {int: [1, 3]}          # `length` of a list: how many of its entries are kept
        quantization.weight: {choices: ["ap_fixed<6,2>", "ap_fixed<8,2>"]}
      objectives:
        - {metric: efficiency, direction: maximize, rate_khz: 100}
        - {metric: bops, direction: minimize}
      constraints: {latency_within_budget: true, max_device_fraction: 0.5, limits: {lut: 20000}}
      budget: {trials: 12, parallel: 2, trial_time: 20m, resumes: 3, trial_mem_gb: 4}
    segments:
      - {name: barrel, select: {objects_eta: [0, 1.5]}}
      - {name: endcap, select: {objects_eta: [1.5, 3.0]}, overrides: {training.epochs: 20}}
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from l1ml.config.loader import StrictModel, validate_config
from l1ml.config.train import COST_FIGURES, CostLimits, TrainConfig
from l1ml.config.types import Name, parse_duration
from l1ml.errors import L1mlError

#: objective metrics computed from the training run's metrics.json (quantised model, mean over the chosen signals)
PHYSICS_METRICS = ("efficiency", "auc")
COST_METRICS = tuple(COST_FIGURES)
LENGTH = "length"  # `<list path>.length`: how many entries of that list are kept (depth of an encoder)


def _duration(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("give a duration such as 20m, 2h or 3600 (seconds)")
    return parse_duration(str(value))


class Parameter(StrictModel):
    """One searched value: `int: [low, high]` or `float: [low, high]` (optionally `log`, `step`), or `choices`."""

    int_range: list[int] | None = Field(None, alias="int", min_length=2, max_length=2)
    float_range: list[float] | None = Field(None, alias="float", min_length=2, max_length=2)
    choices: list[Any] | None = Field(None, min_length=1)
    log: bool = False
    step: float | None = Field(None, gt=0)

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_kind(self) -> Parameter:
        given = [k for k, v in (("int", self.int_range), ("float", self.float_range), ("choices", self.choices)) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of int: [low, high], float: [low, high] or choices: [...]")
        bounds = self.int_range or self.float_range
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"the range [{bounds[0]}, {bounds[1]}] is empty: give [low, high] with low < high")
        if self.log and (bounds is None or bounds[0] <= 0):
            raise ValueError("log: true needs a numeric range above 0")
        if self.log and self.step is not None:
            raise ValueError("give log or step, not both (Optuna samples a log range without steps)")
        if self.choices is not None and (self.log or self.step is not None):
            raise ValueError("log and step apply to int and float ranges, not to choices")
        if self.int_range is not None and self.step is not None and self.step != int(self.step):
            raise ValueError("the step of an int range is a whole number")
        if self.choices is not None and any(c is not None and not isinstance(c, (bool, int, float, str)) for c in self.choices):
            raise ValueError("choices are single values (numbers, text, true/false); vary a list's entries one by one")
        return self

    def corners(self) -> list[Any]:
        """The values that must all make a valid train config: the range's ends, or every choice."""
        if self.choices is not None:
            return list(self.choices)
        return list(self.int_range or self.float_range)


class Objective(StrictModel):
    metric: Literal["efficiency", "auc", "lut", "ff", "dsp", "bram_18k", "latency_cycles", "latency_ns", "bops",
                    "multiplications", "adders", "comparators", "weighted"] = Field(
        description="efficiency/auc: of the quantised model on the test events, averaged over `signals`; the others: "
                    "`l1ml estimate` figures of the converted firmware (`method`); weighted: the sum of `terms`")
    direction: Literal["maximize", "minimize"]
    rate_khz: float | None = Field(None, gt=0, description="efficiency: the target rate; one of evaluation.rates_khz")
    signals: list[str] | None = Field(None, min_length=1, description="efficiency/auc: default all of data.signals")
    method: Literal["counts", "rtl", "bdt"] = Field("counts", description="the estimate method a cost figure comes from")
    terms: dict[str, float] | None = Field(None, description="weighted: metric -> weight, e.g. {efficiency: 1, bops: -1e-5}")

    @model_validator(mode="after")
    def _complete(self) -> Objective:
        if self.metric == "weighted":
            if not self.terms:
                raise ValueError("a weighted objective needs terms: {metric: weight, ...}")
            bad = [t for t in self.terms if t not in PHYSICS_METRICS + COST_METRICS]
            if bad:
                raise ValueError(f"unknown term {bad[0]!r}; terms are {', '.join(PHYSICS_METRICS + COST_METRICS)}")
        elif self.terms is not None:
            raise ValueError("terms apply to the weighted metric only")
        uses_rate = self.metric == "efficiency" or "efficiency" in (self.terms or {})
        if uses_rate and self.rate_khz is None:
            raise ValueError("an efficiency needs rate_khz (one of evaluation.rates_khz)")
        return self

    @property
    def label(self) -> str:
        if self.metric == "efficiency":
            return f"efficiency@{self.rate_khz:g}kHz"
        if self.metric in COST_METRICS:
            return f"{self.metric} ({self.method})"
        return self.metric


class Constraints(StrictModel):
    """What a trial must meet to count (infeasible trials stay in the study, and its sampler steers away from them)."""

    latency_within_budget: bool = Field(False, description="the estimated latency within the hw target's budget")
    max_device_fraction: float | None = Field(None, gt=0, le=1, description="every estimated resource at most this fraction of the device")
    limits: CostLimits = Field(default_factory=CostLimits, description="upper bounds on `l1ml estimate`'s figures")
    method: Literal["counts", "rtl", "bdt"] = Field("counts", description="the estimate method the constraints are checked on")


class Budget(StrictModel):
    trials: int = Field(12, ge=1, le=100_000, description="trials per study (each segment is one study)")
    parallel: int = Field(2, ge=1, description="trial jobs running at once, over all segments")
    trial_time: Annotated[int, Field(ge=1)] = Field(1800, description="wall time of one trial job (20m, 2h, seconds)")
    resumes: int = Field(3, ge=0, description="times a trial stopped at its wall time is resubmitted with --resume")
    trial_mem_gb: float = Field(4.0, gt=0, description="memory request of a trial job")

    @field_validator("trial_time", mode="before")
    @classmethod
    def _time(cls, v: Any) -> int:
        return _duration(v)


class SearchSection(StrictModel):
    parameters: dict[str, Parameter] = Field(min_length=1, description="dotted paths into the train config")
    objectives: list[Objective] = Field(min_length=1, max_length=3)
    constraints: Constraints = Field(default_factory=Constraints)
    budget: Budget = Field(default_factory=Budget)
    sampler: Literal["tpe", "random", "nsga2"] = Field("tpe", description="Optuna's sampler (seeded with the config's seed)")
    include_base: bool = Field(True, description="the first trial is the config as written (when it lies in the space)")
    verify_front: bool = Field(False, description="`l1ml verify` of the Pareto front's members as jobs, once the trials ended")


class Selection(StrictModel):
    """Which events a segment's trials see: a selection of every sample of the events file."""

    signals: list[str] | None = Field(None, min_length=1, description="the signals of this segment (a BDT trains on the first)")
    objects_eta: list[float] | None = Field(None, min_length=2, max_length=2,
                                            description="[low, high): objects outside this |eta| window are removed (not the MET)")
    events: list[int] | None = Field(None, min_length=2, max_length=2, description="[start, stop) of every sample's events")

    @model_validator(mode="after")
    def _windows(self) -> Selection:
        for key, window in (("objects_eta", self.objects_eta), ("events", self.events)):
            if window is not None and not 0 <= window[0] < window[1]:
                raise ValueError(f"{key}: give [low, high) with 0 <= low < high")
        return self


class Segment(StrictModel):
    name: Name
    select: Selection = Field(default_factory=Selection)
    overrides: dict[str, Any] = Field(default_factory=dict, description="dotted paths into the train config -> value")


class SearchConfig(TrainConfig):
    """`l1ml search` config: a train config with a `search:` section and optional `segments:`."""

    search: SearchSection
    segments: list[Segment] = Field(default_factory=list)


# ----------------------------------------------------------------------------------------- the train config of a trial


def train_dict(config: dict) -> dict:
    """A search config's train config: without `search` and `segments`."""
    return {k: copy.deepcopy(v) for k, v in config.items() if k not in ("search", "segments")}


def set_path(config: dict, path: str, value: Any, *, where: str) -> None:
    """Set a dotted path of a config mapping (list entries by index; `<list>.length` keeps that many entries, repeating
    the last one where it grows). A path that does not lead into the config is one error naming `where`."""
    parts = path.split(".")
    node: Any = config
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: i + 1]), where)
    last = parts[-1]
    if last == LENGTH and isinstance(node, list):
        n = int(value)
        if n < 1:
            raise L1mlError(f"a list keeps at least one entry, not {n}", key=where, value=value)
        node[:] = node[:n] + [copy.deepcopy(node[-1]) for _ in range(n - len(node))]
    elif isinstance(node, list):
        index = _index(node, last, path, where)
        node[index] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise L1mlError(f"{'.'.join(parts[:-1])} is a value, not a section, in the train config", key=where, value=path)


def _child(node: Any, part: str, so_far: str, where: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, so_far, where)]
    if not isinstance(node, dict):
        raise L1mlError(f"{so_far} is a value, not a section, in the train config", key=where)
    if part not in node:
        node[part] = {}  # a section the config leaves at its defaults (e.g. training:)
    return node[part]


def _index(node: list, part: str, path: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise L1mlError(f"{path}: the list has {len(node)} entries (0 to {len(node) - 1}, or `length`)", key=where, value=part)
    return int(part)


def apply(config: dict, values: dict[str, Any], *, where: str = "search.parameters") -> dict:
    """The train config dict with the given path -> value set; `length` paths first, so that the entries they make
    can be set too."""
    out = train_dict(config)
    for path in sorted(values, key=lambda p: (not p.endswith(f".{LENGTH}"), p)):
        set_path(out, path, values[path], where=f"{where}.{path}")
    return out


def check_consistency(cfg: SearchConfig, source: str) -> None:
    """What the sections of a search config must agree on: objectives with the evaluation and the model, segments with
    the signals."""
    names = [s.name for s in cfg.segments]
    for name in names:
        if names.count(name) > 1:
            raise L1mlError("the name is given twice", path=source, key="segments", value=name)
    bdt = cfg.model.kind == "bdt"
    for i, objective in enumerate(cfg.search.objectives):
        where = f"search.objectives.{i}"
        if objective.rate_khz is not None and not any(abs(objective.rate_khz - r) < 1e-9 for r in cfg.evaluation.rates_khz):
            raise L1mlError(f"not one of evaluation.rates_khz ({', '.join(f'{r:g}' for r in cfg.evaluation.rates_khz)})",
                            path=source, key=f"{where}.rate_khz", value=objective.rate_khz)
        unknown = [s for s in objective.signals or [] if s not in cfg.data.signals]
        if unknown:
            raise L1mlError(f"not one of data.signals ({', '.join(cfg.data.signals)})", path=source, key=f"{where}.signals",
                            value=unknown[0])
        if objective.method == ("rtl" if bdt else "bdt"):
            raise L1mlError("does not apply to this model (rtl: networks, bdt: BDTs)", path=source, key=f"{where}.method",
                            value=objective.method)
        for segment in cfg.segments:
            chosen = segment.select.signals
            if chosen and objective.signals and not set(objective.signals) <= set(chosen):
                raise L1mlError(f"segment {segment.name!r} has only {', '.join(chosen)}", path=source, key=f"{where}.signals")
    for segment in cfg.segments:
        unknown = [s for s in segment.select.signals or [] if s not in cfg.data.signals]
        if unknown:
            raise L1mlError("not one of data.signals", path=source, key=f"segments.{segment.name}.select.signals",
                            value=unknown[0])


def check_space(config: dict, parsed: SearchConfig, source: str) -> None:
    """The sections agree, and every end of every range and every choice, and every segment's overrides, make a valid
    train config."""
    check_consistency(parsed, source)
    for path in parsed.search.parameters:
        if not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)+", path):
            raise L1mlError("not a dotted path into the train config (e.g. model.max_depth)", path=source,
                            key=f"search.parameters.{path}")
        if path.split(".")[0] in ("name", "seed", "data"):
            raise L1mlError("name, seed and data are not searched (segments select data)", path=source,
                            key=f"search.parameters.{path}")
    base = parsed.model_dump(mode="json", by_alias=True, exclude={"search", "segments"}, exclude_none=True)
    for segment in parsed.segments:
        where = f"segments.{segment.name}.overrides"
        _validate(apply(base, segment.overrides, where=where), source, where)
    for path, parameter in parsed.search.parameters.items():
        for value in parameter.corners():
            _validate(apply(base, {path: value}), source, f"search.parameters.{path}", value)


def _validate(train: dict, source: str, where: str, value: Any = None) -> None:
    try:
        validate_config(train, TrainConfig, source="")
    except L1mlError as exc:
        shown = "" if value is None else f"with {value!r}, "
        raise L1mlError(f"{shown}the train config is not valid: {str(exc).removeprefix(': ')}", path=source, key=where) from None
