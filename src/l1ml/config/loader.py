"""Read YAML into pydantic models and turn validation failures into one message naming file, key and value."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from l1ml.errors import L1mlError


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


M = TypeVar("M", bound=BaseModel)


def load_yaml(path: str | Path) -> tuple[str, Any]:
    """The text of a YAML file and its parsed content (`yaml.safe_load`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise L1mlError("no such file", path=path) from None
    except IsADirectoryError:
        raise L1mlError("is a directory, expected a YAML file", path=path) from None
    except UnicodeDecodeError as e:
        raise L1mlError(f"not a text file ({e.reason} at byte {e.start})", path=path) from None
    try:
        return text, yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise L1mlError(f"invalid YAML{where}: {problem}", path=path) from None


def load_config(path: str | Path, model: type[M]) -> tuple[str, M]:
    """Load and validate a YAML config file. Returns the file text and the validated model."""
    text, data = load_yaml(path)
    return text, validate_config(data, model, source=path)


def validate_config(data: Any, model: type[M], *, source: str | Path) -> M:
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise L1mlError(f"expected a mapping of keys to values at the top level, found {kind}", path=source)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise _as_user_error(e, model, source) from None


def _as_user_error(err: ValidationError, model: type[BaseModel], source: str | Path) -> L1mlError:
    problems = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        value = item.get("input")
        if item["type"] == "extra_forbidden":
            valid = _keys_at(model, item["loc"][:-1])
            close = difflib.get_close_matches(str(item["loc"][-1]), valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            msg = f"unknown key{hint}; valid keys here: {', '.join(valid)}" if valid else "unknown key"
            problems.append(f"key '{key}': {msg}")
        elif item["type"] == "missing":
            problems.append(f"key '{key}': required but missing")
        else:
            msg = item["msg"].removeprefix("Value error, ")
            problems.append(f"key '{key}', value {_short(value)}: {msg}")
    head = problems[0]
    rest = "".join(f"\n  also: {p}" for p in problems[1:])
    return L1mlError(head + rest, path=source)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names of the sub-model found by following `loc` from `model`, or [] if it is not a model."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # list index: the item type was already selected below
        fields = getattr(current, "model_fields", None)
        if fields and part in fields:
            current = _model_in(fields[part].annotation)
        elif current is not None and isinstance(part, str):
            # a key of a dict[str, Model]: the model is unchanged, the key itself is data
            continue
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _model_in(annotation: Any) -> Any:
    """The BaseModel class inside an annotation like `Model`, `Model | None`, `list[Model]`, `dict[str, Model]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
