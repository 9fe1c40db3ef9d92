"""The documents l1ml writes and reads back, each a pydantic model with a `format` version.

A document is validated where it is read (`read(path, Model)`): a missing file, text that is not JSON, a document of
another format (an older l1ml, or a file that is not l1ml's) and a damaged one are each one error that names the file
and the key, never a guess. Their JSON schemas are committed under `schemas/documents/` (`make schemas`), so that
other tools can read them too.

The top level of every document is strict (an unknown key is an error); parts that only carry information for people
and later tools (a check's details, parsed reports, lineage) are free-form mappings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, ValidationError, ValidationInfo, field_validator, model_validator

from l1ml.config.kinds import schema_json, write_schema_files
from l1ml.errors import L1mlError
from l1ml.quantize.fixedpoint import parse_fixed
from l1ml.quantize.normalisation import Normalisation
from l1ml.runs import write_atomic, write_json_atomic

Info = dict[str, Any]


class Document(BaseModel):
    """Base of every document: strict at the top level; `format` names the document and its version."""

    model_config = ConfigDict(extra="forbid")
    compact_json: ClassVar[bool] = False  # written on one line: documents of long arrays (weights, trees)

    @classmethod
    def format_name(cls) -> str:
        return cls.model_fields["format"].default

    def write(self, path: str | Path) -> Path:
        data = self.model_dump(mode="json", by_alias=True, exclude_none=False)
        if self.compact_json:
            write_atomic(path, json.dumps(data, separators=(",", ":")) + "\n")
        else:
            write_json_atomic(path, data)
        return Path(path)


D = TypeVar("D", bound=Document)


# ------------------------------------------------------------------------------------------------ training runs


class StepManifest(Document):
    """`manifest.json` of a step (data generate, data inspect, train, convert): what went in and came out, by SHA-256,
    with the config as given and resolved, the seed, the command, the host, l1ml's commit and the tool versions."""

    format: Literal["l1ml-manifest/1"] = "l1ml-manifest/1"
    step: str
    created: str
    command: list[str]
    cwd: str
    host: str
    l1ml_git: Info
    tools: dict[str, str]
    seed: int | None
    config: Info | None
    inputs: dict[str, Info]
    outputs: dict[str, Info]
    # what some steps add
    config_hash: str | None = None
    resumed: bool | None = None  # train
    training_seconds: float | None = None  # train
    jobs: int | None = None  # data generate
    seconds: float | None = None  # data generate
    samples: dict[str, Info] | None = None  # data generate


class RunState(Document):
    """`run.json`: which config made the run and how far training got."""

    format: Literal["l1ml-run/1"] = "l1ml-run/1"
    config_hash: str
    status: Literal["running", "interrupted", "failed", "finished"]
    started: str
    ended: str | None = None
    message: str | None = None


class FileRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str  # absolute, as written
    relative_to_run: str  # the same file seen from the run folder
    bytes: int
    sha256: str


class DataConfigRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str
    as_given: str


class RunInputs(Document):
    """`inputs.json`: the events file a run was trained on (and the data config that made it, if one did)."""

    format: Literal["l1ml-run-inputs/1"] = "l1ml-run-inputs/1"
    events: FileRecord
    data_config: DataConfigRecord | None = None


class ThresholdRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate_khz: float
    threshold: float
    background_pass: int
    achieved_rate_khz: float
    achieved_rate_err_khz: float
    threshold_bits: int | None = None  # the quantised model's: the score type's integer code
    threshold_hex: str | None = None


class Metrics(Document):
    """`metrics.json`: thresholds by rate and, per signal, AUC and efficiencies, float and quantised."""

    format: Literal["l1ml-metrics/1"] = "l1ml-metrics/1"
    bx_rate_khz: float
    n_background_test: int
    score_type: str
    trigger: str
    thresholds: dict[Literal["float", "quantized"], list[ThresholdRow]]
    signals: dict[str, Info]
    warnings: list[str] = Field(default_factory=list)
    model: Info = Field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ firmware


class VerifyReport(Document):
    """`verify/report.json`: every check with its counts, what was verified (the fingerprint) and how."""

    format: Literal["l1ml-verify-report/1"] = "l1ml-verify-report/1"
    created: str
    target: str
    firmware: str
    passed: bool
    failed_checks: list[str]
    checks: list[Info]
    kind: str
    fingerprint: dict[str, str]
    checked_firmware: list[str]
    options: Info
    sample: Info
    csim: Info
    emulator: Info
    l1ml_git: Info
    tools: dict[str, str]


# ------------------------------------------------------------------------------------------------ firmware and training


def _fixed_type(text: str) -> str:
    parse_fixed(text)  # its ValueError says what is wrong with the type
    return text


#: A fixed-point type as l1ml writes it, e.g. "ap_fixed<16,6,AP_RND_CONV,AP_SAT>".
FixedTypeName = Annotated[str, AfterValidator(_fixed_type)]


CONVERT = "convert.json"  # the ConvertInfo of every converted firmware project, beside its project folder


class ConvertInfo(Document):
    """`convert.json`: which tool made a firmware project, for which part and clock, for what shape, with which types."""

    format: Literal["l1ml-convert/1"] = "l1ml-convert/1"
    tool: str  # the FirmwareProject kind: "hls4ml", "conifer"
    backend: str  # as the tool names it: "Vitis", "Vivado", "xilinxhls", "vhdl"
    tool_version: str
    project: str  # the top function / project name
    part: str
    clock_period_ns: float
    target: str | None = None  # the hw target's name
    n_features: PositiveInt
    n_outputs: PositiveInt
    types: dict[str, FixedTypeName]  # the firmware's types by role: "input" always; conifer also threshold, score, weight
    details: Info = Field(default_factory=dict)  # the tool's own settings, for people (strategy, trees, ...)
    source: Info = Field(default_factory=dict)  # what was converted

    @field_validator("types")
    @classmethod
    def _has_input(cls, types: dict[str, str]) -> dict[str, str]:
        if "input" not in types:
            raise ValueError("no 'input' type")
        return types


class _Layer(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: str = Field(alias="class")  # hls4ml's layer class, one of the subclasses' Literal
    name: str
    inputs: list[str]
    output: str
    result_type: FixedTypeName


class InputLayer(_Layer):
    kind: Literal["Input"] = Field("Input", alias="class")


class DenseLayer(_Layer):
    kind: Literal["Dense"] = Field("Dense", alias="class")
    input_type: FixedTypeName
    weight_type: FixedTypeName
    bias_type: FixedTypeName
    accum_type: FixedTypeName
    weight_codes: list[list[int]]  # inputs x outputs
    bias_codes: list[int]


class ActivationLayer(_Layer):
    kind: Literal["Activation"] = Field("Activation", alias="class")
    activation: Literal["relu", "linear"]


class MergeLayer(_Layer):
    kind: Literal["Merge"] = Field("Merge", alias="class")
    op: Literal["add", "subtract", "multiply"]


EmulatorLayer = Annotated[InputLayer | DenseLayer | ActivationLayer | MergeLayer, Field(discriminator="kind")]


class EmulatorSpec(Document):
    """`emulator.json`: an hls4ml network's layers, types and weights (integer codes) for its bit-exact emulator, or
    why it has none."""

    format: Literal["l1ml-emulator-network/1"] = "l1ml-emulator-network/1"
    compact_json: ClassVar[bool] = True
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    layers: list[EmulatorLayer] = Field(default_factory=list)  # in the order they are evaluated
    unsupported: str | None = None  # why the network has no emulator (then it has no layers)

    @model_validator(mode="after")
    def _layers_or_reason(self) -> EmulatorSpec:
        if (self.unsupported is None) == (not self.layers or not self.outputs):
            raise ValueError("expected either layers and outputs, or the reason why there are none (unsupported)")
        return self


class RtlSummary(Document):
    """`firmware/rtl/rtl.json`: the RTL that da4ml traced from an emulator specification (`l1ml.firmware.rtl`)."""

    format: Literal["l1ml-rtl/1"] = "l1ml-rtl/1"
    top: str
    part: str
    clock_period_ns: float
    latency_cutoff: float  # da4ml's pipelining cut, in its adder-delay units
    latency_cycles: int  # pipeline registers between input and output (0: combinational)
    reg_bits: int  # flip-flops of the pipeline registers
    da4ml_lut_estimate: float  # da4ml's own cost model
    n_inputs: PositiveInt
    n_outputs: PositiveInt
    input_kif: list[int]  # (sign, integer, fractional) bits of the widest input and output port, as da4ml narrowed them
    output_kif: list[int]
    tools: dict[str, str]
    seconds: float


class Tree(BaseModel):
    """One tree as per-node arrays (a leaf has feature -2 and children -1)."""

    model_config = ConfigDict(extra="forbid")
    feature: list[int]
    threshold: list[float]
    value: list[float]
    children_left: list[int]
    children_right: list[int]
    weight: list[list[int]]  # conifer's one-hot vector of each node's feature


class Ensemble(Document):
    """`ensemble.json`: the trees of a conifer project as converted, in conifer's form (its `ensembleDict`)."""

    format: Literal["l1ml-ensemble/1"] = "l1ml-ensemble/1"
    compact_json: ClassVar[bool] = True
    max_depth: PositiveInt
    n_trees: PositiveInt
    n_classes: Annotated[int, Field(ge=2)]
    n_features: PositiveInt
    trees: list[list[Tree]]  # one list per boosting round, one tree per class in each
    init_predict: list[float]
    norm: float
    library: str
    splitting_convention: Literal["<", "<="]
    feature_map: dict[str, int]


class BdtInfo(Document):
    """`model/bdt.json`: a trained BDT's task, features and firmware types."""

    format: Literal["l1ml-bdt/1"] = "l1ml-bdt/1"
    task: Literal["classification", "regression"]
    objective: str
    score: str  # what the score is, for people
    input_type: FixedTypeName
    score_type: FixedTypeName
    features: list[str]
    n_trees: PositiveInt
    max_depth: PositiveInt


class SourceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str  # absolute, as given
    sha256: str  # of the file, or of the folder's tree (a SavedModel)


class ByoRecord(Document):
    """`byo.json`: the model `l1ml convert --keras/--xgboost/--conifer --out DIR` converted, its shape and types."""

    format: Literal["l1ml-byo/1"] = "l1ml-byo/1"
    kind: Literal["keras", "xgboost", "conifer"]
    input_type: FixedTypeName
    n_features: PositiveInt
    n_outputs: PositiveInt
    backends: list[str]  # the firmware/<backend>/ folders written
    source: dict[str, SourceFile]  # the given files, by role: "architecture" and "weights", or "model"
    model_files: dict[str, str]  # what verify loads, by the same roles, relative to DIR/model/
    # Keras models
    softmax: bool = False  # ends in a softmax: the logits are converted too (<backend>/logits/)
    model_quantizes_inputs: bool = False
    rewritten: list[str] = Field(default_factory=list)  # the layers rewritten into forms hls4ml converts bit for bit
    # BDTs
    types: dict[str, FixedTypeName] = Field(default_factory=dict)
    n_trees: PositiveInt | None = None
    max_depth: PositiveInt | None = None
    notes: list[str] = Field(default_factory=list)

    @field_validator("model_files")
    @classmethod
    def _files_of_kind(cls, files: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        needed = "architecture" if info.data.get("kind") == "keras" else "model"
        if needed not in files:
            raise ValueError(f"no {needed!r} file")
        return files


class NormalisationRecord(Document):
    """`normalisation.json`: a network's input normalisation, x_norm = (x - offset) * 2**-shift (`l1ml.quantize`)."""

    format: Literal["l1ml-normalisation/1"] = "l1ml-normalisation/1"
    features: list[str]
    offset: list[float]
    shift: list[int]
    input_type: FixedTypeName
    formula: Literal["x_norm = (x - offset) * 2**-shift"] = "x_norm = (x - offset) * 2**-shift"

    @model_validator(mode="after")
    def _one_per_feature(self) -> NormalisationRecord:
        if not len(self.features) == len(self.offset) == len(self.shift):
            raise ValueError(f"{len(self.features)} features, {len(self.offset)} offsets and {len(self.shift)} shifts")
        return self

    @classmethod
    def of(cls, norm: Normalisation) -> NormalisationRecord:
        return cls(features=norm.features, offset=norm.offset.tolist(), shift=norm.shift.tolist(),
                   input_type=norm.input_type)

    def normalisation(self) -> Normalisation:
        return Normalisation(list(self.features), np.array(self.offset, dtype=np.float64),
                             np.array(self.shift, dtype=np.int64), self.input_type)


# ------------------------------------------------------------------------------------------------ synthesis jobs


JobKind = Literal["hls", "verify", "ghdl", "vivado-rtl", "trial"]
Step = Literal["csynth", "cosim", "export", "vsynth"]


class JobExtra(BaseModel):
    """What a job carries besides its spec: the hw target its project was converted for (the budgets it is compared
    with), the Slurm partition and account, the random events of a verify job of a model converted with --out."""

    model_config = ConfigDict(extra="forbid")
    hw_target: str | None = None
    partition: str | None = None
    account: str | None = None
    random_events: int = 20000
    resume: bool = False  # trial jobs: continue the trial's training run from its last checkpoint
    signal_before_s: int | None = None  # trial jobs: SIGTERM this long before the wall time (Slurm --signal)


class JobSpec(BaseModel):
    """What a synthesis job runs, on what, with which requests (`l1ml.synth.jobs`)."""

    model_config = ConfigDict(extra="forbid")
    kind: JobKind
    model: str  # a readable name: the run's or folder's name
    target: str  # the run or BYO folder
    project: str  # the FirmwareProject's project_dir: what hls and ghdl jobs copy
    tool: str  # "vitis" / "vivado" (HLS), "l1ml", "ghdl"
    part: str
    clock_ns: float
    steps: list[Step]
    mem_gb: float
    time_s: int
    cpus: int
    project_hash: str
    build_script: str = ""  # the project's own Tcl script (hls)
    settings: str | None = None  # a script to source before the tool (e.g. Vivado's settings64.sh)
    container: str | None = None  # an apptainer image to run the tool in
    extra: JobExtra = Field(default_factory=JobExtra)

    @property
    def dedup_key(self) -> str:
        """Equal for jobs that do the same work: kind, project content, steps and tool."""
        return hashlib.sha256(f"{self.kind}|{self.project_hash}|{','.join(self.steps)}|{self.tool}".encode()).hexdigest()[:24]


class SynthJob(JobSpec, Document):
    """`job.json`: a synthesis job's id and spec, in its self-contained job folder."""

    format: Literal["l1ml-synth-job/1"] = "l1ml-synth-job/1"
    id: str


class VerifyVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passed: bool
    failed_checks: list[str]


class GhdlRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: int  # compared with the expected scores


class JobReports(BaseModel):
    """The reports a job left: C-synthesis and Vivado's utilisation, parsed (`l1ml.synth.reports`), a verify job's
    verdict, a GHDL job's events; `found` names the files (none when the report that matters is missing)."""

    model_config = ConfigDict(extra="forbid")
    found: list[str] = Field(default_factory=list)
    csynth: Info | None = None
    vsynth: Info | None = None
    verify: VerifyVerdict | None = None
    ghdl: GhdlRun | None = None


class BudgetRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str  # "latency (ns)", "clock incl. uncertainty (ns)", "<resource> fraction"
    value: float
    budget: float
    ok: bool


class SynthResult(Document):
    """`result.json`: how a synthesis job ended, the reports it left and their comparison with the hw target's budgets."""

    format: Literal["l1ml-synth-result/1"] = "l1ml-synth-result/1"
    id: str
    state: str  # done, failed, out_of_memory, timeout, tool_missing, cancelled (l1ml.synth.outcome)
    message: str
    transient: bool = False  # the batch system lost the job: it is submitted again
    exit_code: int | None = None
    killed_for: Literal["cancel", "memory", "time"] | None = None  # why the local watchdog stopped it
    started: float
    ended: float
    host: str | None = None
    peak_mem_gb: float | None = None
    tool_version: str | None = None
    reports: JobReports = Field(default_factory=JobReports)
    budget: list[BudgetRow] = Field(default_factory=list)
    within_budget: bool | None = None  # None: not compared, for the reason in budget_unknown
    budget_unknown: str | None = None


class EstimateFigures(BaseModel):
    """What one estimate method found, under plain keys (None: not something this method measures)."""

    model_config = ConfigDict(extra="forbid")
    tool: str  # what computed it, with its version: "l1ml counts", "da4ml 0.6.0 + yosys 0.23 synth_xilinx -family xcup"
    seconds: float  # wall time the method took
    lut: int | None = None
    ff: int | None = None
    dsp: int | None = None
    carry: int | None = None
    bram_18k: int | None = None
    bops: int | None = None  # bit operations (networks: sum over multiplications of b_x * b_w, plus the adders' bits)
    logic_depth: int | None = None  # cells on the longest register-to-register path (Yosys `ltp -noff`)
    latency_cycles: int | None = None
    latency_ns: float | None = None
    fraction_of_device: dict[str, float] = Field(default_factory=dict)  # resource -> used / available on the target
    within_budget: bool | None = None  # latency within the target's budget and every resource within the device
    note: str = ""  # how to read the figures (e.g. which route a BDT took), for people
    details: Info = Field(default_factory=dict)  # per layer / per tree breakdowns, tool logs' paths


class EstimateReport(Document):
    """`estimate/estimate.json`: a model's firmware cost from open-source tools (`l1ml estimate`), never a Vivado
    result. `methods` holds each method that ran: "counts" (exact operation counts), "rtl" (da4ml RTL through Yosys),
    "bdt" (conifer's VHDL through GHDL and Yosys, or conifer's estimators); `failed` says why a method did not."""

    format: Literal["l1ml-estimate/1"] = "l1ml-estimate/1"
    created: str
    notice: str = "open-source estimates (l1ml counts, da4ml, Yosys, GHDL), not Vivado results"
    kind: Literal["network", "bdt"]
    target: str  # the hw target's name
    part: str
    family: str
    clock_period_ns: float
    latency_budget_ns: float
    device: dict[str, int]  # the target's resources
    source: Info  # what was estimated: the run or folder, the project, the emulator/ensemble file and its SHA-256
    methods: dict[Literal["counts", "rtl", "bdt"], EstimateFigures]
    failed: dict[str, str] = Field(default_factory=dict)  # method -> why it did not run
    vivado: list[Info] = Field(default_factory=list)  # Vivado's figures of finished synthesis jobs and their ratios


class CondorQueryFailures(Document):
    """`condor_query_failures.json`: how many queries in a row could not tell an HTCondor job's state, since when."""

    format: Literal["l1ml-condor-query-failures/1"] = "l1ml-condor-query-failures/1"
    count: int
    since: float  # epoch seconds of the first failed query


# ------------------------------------------------------------------------------------------------ deliveries


DeliveryKind = Literal["firmware", "emulator-only"]


class FileHash(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    bytes: int


class DeliveryManifest(Document):
    """`manifest.json`: a delivery's model, version and kind, where it came from (lineage, verify and synthesis
    summaries) and the SHA-256 and size of every other file of the package."""

    format: Literal["l1ml-delivery/1"] = "l1ml-delivery/1"
    model: str
    version: str
    kind: DeliveryKind
    firmware_release: bool
    created: str
    lineage: Info
    verify: Info
    synthesis: Info
    emulator: Info
    test_vectors: Info
    metrics: Info
    files: dict[str, FileHash]  # by path relative to the package
    build_products: list[str] = Field(default_factory=list)  # what its own build makes (none in older packages)


class DeliveryRecord(Document):
    """`<version>.record.json`: beside a delivery's folder and archive, the SHA-256 of its manifest and archive."""

    format: Literal["l1ml-delivery-record/1"] = "l1ml-delivery-record/1"
    model: str
    version: str
    kind: DeliveryKind
    created: str
    manifest_sha256: str
    archive_sha256: str


class VectorsType(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int
    type: FixedTypeName
    width: int
    fractional_bits: int


class VectorsBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str  # "test:<sample>", "adversarial:<kind>"
    rows: tuple[int, int]  # first row, end row


class VectorsInfo(Document):
    """`vectors.json`: the types of a delivery's test vectors, how they are written, and which rows are which."""

    format: Literal["l1ml-test-vectors/1"] = "l1ml-test-vectors/1"
    events: int
    inputs: VectorsType
    outputs: VectorsType
    hex: str
    npy: str
    raw_inputs: Info
    blocks: list[VectorsBlock]


# ------------------------------------------------------------------------------------------------ reading


# ------------------------------------------------------------------------------------------------ searches


class SearchStudy(Document):
    """`search.json` of a study folder (`runs/search/<name>/`): what the search is, so that the same command started
    again re-attaches to it, and where its Optuna storage is."""

    format: Literal["l1ml-search/1"] = "l1ml-search/1"
    name: str
    created: str
    config_path: str  # the search config as given
    config_hash: str  # SHA-256 of the validated config: a different config is refused, not mixed into the study
    storage: str | None = None  # Optuna's RDB URL given with --storage; None: optuna.sqlite in the study folder (wherever it is)
    backend: str  # local, slurm, condor
    segments: list[str]  # one Optuna study each ("<name>/<segment>"); ["all"] when the config has no segments
    directions: list[Literal["maximize", "minimize"]]
    objectives: list[str]  # labels, in the order of the values
    trials: int  # per study: the budget's, or the last --trials given
    data_source: str  # data.events of the config, absolute (what `l1ml search export` writes for a study without segments)


class TrialSpec(Document):
    """`trial.json` of a trial folder: which trial it is and what its job computes (the trial folder stands alone: its
    job needs nothing else of the study)."""

    format: Literal["l1ml-search-trial-spec/1"] = "l1ml-search-trial-spec/1"
    study: str
    segment: str
    number: int
    params: Info
    objectives: list[Info]  # config.search.Objective, validated where the trial reads them
    constraints: Info  # config.search.Constraints
    signals: list[str]  # data.signals of the trial's config


class TrialResult(Document):
    """`result.json` of a trial folder, written by the trial job: its objective values and constraint values
    (<= 0: met), from the training run's metrics and `l1ml estimate`."""

    format: Literal["l1ml-search-trial/1"] = "l1ml-search-trial/1"
    segment: str
    number: int
    run_dir: str
    values: list[float]
    constraints: list[float]  # each <= 0 when met (Optuna's convention)
    feasible: bool
    figures: dict[str, float | None]  # every physics and cost figure the objectives could use
    seconds: dict[str, float]  # train, convert, estimate
    resumed: int  # how many times the training run was resumed


class TrialRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segment: str
    number: int
    state: str  # COMPLETE, FAIL, RUNNING, WAITING (Optuna), or "queued" before its job started
    params: Info
    values: list[float] | None = None
    feasible: bool | None = None
    on_front: bool = False
    job: str | None = None
    job_state: str | None = None
    wall_s: float | None = None  # summed over the trial's jobs
    resumes: int = 0
    reason: str | None = None  # why it failed
    run_dir: str | None = None
    verify: bool | None = None  # `l1ml verify` of a front member passed
    base: bool = False  # the config as written


class SearchStatus(Document):
    """`status.json` of a study folder: every trial of every segment (what `l1ml search status --json` prints)."""

    format: Literal["l1ml-search-status/1"] = "l1ml-search-status/1"
    name: str
    created: str
    objectives: list[str]
    directions: list[str]
    trials_per_segment: int
    finished: bool
    trials: list[TrialRow]
    steering: dict[str, float] = Field(default_factory=dict)  # seconds the steering spent: ask, submit, result, tell, refresh; told


def read(path: str | Path, model: type[D], what: str | None = None, again: str | None = None) -> D:
    """Read and validate a document; every way it can be wrong is one L1mlError naming the file (and key) and, if given,
    what makes the document `again` (without it, an older one is to be made again with this l1ml)."""
    path = Path(path)
    what = what or (model.__doc__ or model.__name__).split(":")[0].strip("` ")
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise _error(f"missing: the folder has no {path.name} ({what})", again, path=path.parent) from None
    except OSError as exc:
        raise _error(f"not a readable JSON document ({exc})", again, path=path) from None
    return parse(text, model, path, again)


def parse(text: str | bytes, model: type[D], source: str | Path, again: str | None = None) -> D:
    """Validate the text of a document kept elsewhere (a copy in a database): the checks and errors of `read`, naming
    `source`."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _error(f"not a readable JSON document ({exc})", again, path=source) from None
    expected = model.format_name()
    found = data.get("format") if isinstance(data, dict) else None
    if found != expected:
        older = found is None or str(found).split("/")[0] == expected.split("/")[0]
        hint = ("written by an older l1ml" + ("" if again else ": make it again with this one") if older
                else "not this kind of l1ml document")
        raise _error(f"format {found!r}, expected {expected!r}: {hint}", again, path=source, key="format")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or None
        raise _error(f"damaged: {first['msg']}", again, path=source, key=key) from None


def _error(message: str, again: str | None, **where) -> L1mlError:
    return L1mlError(f"{message}: {again}" if again else message, **where)


#: Every document kind, by the name of its schema file.
DOCUMENTS: dict[str, type[Document]] = {
    "manifest": StepManifest,
    "run": RunState,
    "run-inputs": RunInputs,
    "metrics": Metrics,
    "convert": ConvertInfo,
    "emulator-network": EmulatorSpec,
    "rtl": RtlSummary,
    "ensemble": Ensemble,
    "bdt": BdtInfo,
    "byo": ByoRecord,
    "normalisation": NormalisationRecord,
    "verify-report": VerifyReport,
    "synth-job": SynthJob,
    "synth-result": SynthResult,
    "condor-query-failures": CondorQueryFailures,
    "delivery": DeliveryManifest,
    "delivery-record": DeliveryRecord,
    "test-vectors": VectorsInfo,
    "estimate": EstimateReport,
    "search": SearchStudy,
    "search-trial-spec": TrialSpec,
    "search-trial": TrialResult,
    "search-status": SearchStatus,
}


def schema_text(name: str) -> str:
    return schema_json(DOCUMENTS[name], f"l1ml/documents/{name}.schema.json")


def write_schemas(out_dir: str | Path) -> list[Path]:
    return write_schema_files(DOCUMENTS, out_dir, "l1ml/documents/")
