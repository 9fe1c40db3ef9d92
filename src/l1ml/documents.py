"""The documents l1ml writes and reads back, each a pydantic model with a `format` version.

A document is validated where it is read (`read(path, Model)`): a missing file, text that is not JSON, a document of
another format (an older l1ml, or a file that is not l1ml's) and a damaged one are each one error that names the file
and the key, never a guess. Their JSON schemas are committed under `schemas/documents/` (`make schemas`), so that
other tools can read them too.

The top level of every document is strict (an unknown key is an error); parts that only carry information for people
and later tools (a check's details, parsed reports, lineage) are free-form mappings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from l1ml.config.kinds import schema_json, write_schema_files
from l1ml.errors import L1mlError
from l1ml.runs import write_json_atomic

Info = dict[str, Any]


class Document(BaseModel):
    """Base of every document: strict at the top level; `format` names the document and its version."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def format_name(cls) -> str:
        return cls.model_fields["format"].default

    def write(self, path: str | Path) -> Path:
        write_json_atomic(path, self.model_dump(mode="json", exclude_none=False))
        return Path(path)


D = TypeVar("D", bound=Document)


# ------------------------------------------------------------------------------------------------ training runs


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


class ConvertInfo(Document):
    """`convert.json` of a firmware project: which tool made it, for which part and clock, with which types."""

    format: Literal["l1ml-convert/1"] = "l1ml-convert/1"
    tool: str  # the FirmwareProject kind: "hls4ml", "conifer"
    backend: str
    project: str  # the top function / project name
    part: str
    clock_period_ns: float
    target: str | None = None  # the hw target's name
    types: dict[str, str] = Field(default_factory=dict)
    tool_version: str | None = None
    details: Info = Field(default_factory=dict)  # tool-specific facts (strategy, trees, ...)
    source: Info = Field(default_factory=dict)  # what was converted


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


# ------------------------------------------------------------------------------------------------ reading


def read(path: str | Path, model: type[D], what: str | None = None) -> D:
    """Read and validate a document; every way it can be wrong is one L1mlError naming the file (and key)."""
    path = Path(path)
    what = what or (model.__doc__ or model.__name__).split(":")[0].strip("` ")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise L1mlError(f"missing: the folder has no {path.name} ({what})", path=path.parent) from None
    except (OSError, ValueError) as exc:
        raise L1mlError(f"not a readable JSON document ({exc})", path=path) from None
    expected = model.format_name()
    found = data.get("format") if isinstance(data, dict) else None
    if found != expected:
        hint = ("written by an older l1ml: make it again with this one" if found is None or str(found).split("/")[0] ==
                expected.split("/")[0] else "not this kind of l1ml document")
        raise L1mlError(f"format {found!r}, expected {expected!r}: {hint}", path=path, key="format")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or None
        raise L1mlError(f"damaged: {first['msg']}", path=path, key=key) from None


#: Every document kind, by the name of its schema file.
DOCUMENTS: dict[str, type[Document]] = {
    "run": RunState,
    "run-inputs": RunInputs,
    "metrics": Metrics,
    "convert": ConvertInfo,
    "verify-report": VerifyReport,
}


def schema_text(name: str) -> str:
    return schema_json(DOCUMENTS[name], f"l1ml/documents/{name}.schema.json")


def write_schemas(out_dir: str | Path) -> list[Path]:
    return write_schema_files(DOCUMENTS, out_dir, "l1ml/documents/")
