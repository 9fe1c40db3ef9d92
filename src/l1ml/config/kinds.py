"""The kinds of config file l1ml reads, by name: each is a pydantic model with an exported JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from l1ml.config.data import DataConfig
from l1ml.config.hw import HwTarget
from l1ml.config.train import TrainConfig
from l1ml.errors import L1mlError

KINDS: dict[str, type[BaseModel]] = {
    "data": DataConfig,
    "hw": HwTarget,
    "train": TrainConfig,
}


def model_for(kind: str) -> type[BaseModel]:
    try:
        return KINDS[kind]
    except KeyError:
        raise L1mlError(f"unknown config kind; known kinds: {', '.join(KINDS)}", value=kind) from None


def schema_text(kind: str) -> str:
    schema = model_for(kind).model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"l1ml/{kind}.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in KINDS:
        path = out / f"{kind}.schema.json"
        path.write_text(schema_text(kind))
        paths.append(path)
    return paths
