"""The kinds of config file l1ml reads, by name: each is a pydantic model with an exported JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from l1ml.config.data import DataConfig
from l1ml.config.hw import HwTarget
from l1ml.config.search import SearchConfig
from l1ml.config.train import TrainConfig
from l1ml.errors import L1mlError

KINDS: dict[str, type[BaseModel]] = {
    "data": DataConfig,
    "hw": HwTarget,
    "train": TrainConfig,
    "search": SearchConfig,
}


def model_for(kind: str) -> type[BaseModel]:
    try:
        return KINDS[kind]
    except KeyError:
        raise L1mlError(f"unknown config kind; known kinds: {', '.join(KINDS)}", value=kind) from None


def schema_json(model: type[BaseModel], schema_id: str) -> str:
    """The JSON schema of a pydantic model, as committed under schemas/."""
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = schema_id
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schema_files(models: dict[str, type[BaseModel]], out_dir: str | Path, id_prefix: str) -> list[Path]:
    """One `<name>.schema.json` per model in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in models.items():
        path = out / f"{name}.schema.json"
        path.write_text(schema_json(model, f"{id_prefix}{name}.schema.json"))
        paths.append(path)
    return paths


def schema_text(kind: str) -> str:
    return schema_json(model_for(kind), f"l1ml/{kind}.schema.json")


def write_schemas(out_dir: str | Path) -> list[Path]:
    return write_schema_files(KINDS, out_dir, "l1ml/")
