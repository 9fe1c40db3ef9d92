"""Read YAML into pydantic models and turn validation failures into one message naming file, key and value."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Hashable
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from l1ml.errors import L1mlError


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are validated on assignment too, and values are not
    converted between types (pydantic's strict mode): a YAML `true` where a number is wanted is an error, not 1, and
    so are "400" for 400 and 1.5 for an integer. An integer is still a valid float."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, strict=True)


M = TypeVar("M", bound=BaseModel)


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping (safe_load keeps the last value silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges defaults that the mapping's own keys may override
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the SafeLoader refuses it below
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given at line {first_line[key]}); give each key once",
                    key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads 1e-3 and 1.0e6 as text (its floats need a dot and a signed exponent); read them as numbers, as YAML 1.2 does
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
                                       list("-+0123456789."))


def load_yaml(path: str | Path) -> tuple[str, Any]:
    """The text of a YAML file and its parsed content (`yaml.safe_load`, refusing duplicated keys)."""
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
        return text, yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise L1mlError(f"invalid YAML{where}: {problem}", path=path) from None


def resolve_path(config_path: str | Path, value: str | Path) -> Path:
    """A path written inside a config file, resolved relative to that file's folder (absolute paths stay as they are),
    so that a config means the same thing from any working directory."""
    value = Path(value).expanduser()
    return value if value.is_absolute() else Path(os.path.normpath(Path(config_path).resolve().parent / value))


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
        key = _walk(model, item["loc"])[0]
        value = item.get("input")
        if item["type"] == "extra_forbidden":
            valid = _walk(model, item["loc"][:-1])[1]
            close = difflib.get_close_matches(str(item["loc"][-1]), valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            msg = f"unknown key{hint}; valid keys here: {', '.join(valid)}" if valid else "unknown key"
            problems.append(f"key '{key}': {msg}")
        elif item["type"] == "missing":
            problems.append(f"key '{key}': required but missing")
        else:
            msg = item["msg"].removeprefix("Value error, ") + _boolean_hint(value)
            problems.append(f"key '{key}', value {_short(value)}: {msg}")
    head = problems[0]
    rest = "".join(f"\n  also: {p}" for p in problems[1:])
    return L1mlError(head + rest, path=source)


def _boolean_hint(value: object) -> str:
    if isinstance(value, bool):
        return " (YAML reads true/false, yes/no and on/off as booleans, not numbers or text)"
    return ""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _walk(model: type[BaseModel], loc: tuple) -> tuple[str, list[str]]:
    """Follow a pydantic error location from `model`: the key as the user writes it, and the valid keys where it ends
    ([] if not inside a model).

    After a field that holds a union (`model: NetworkModel | BdtModel`), pydantic adds the member it tried ('bdt',
    'list[DenseLayer]') to the location; that is not a key, so it is left out and selects the member. A list index or
    a key of a `dict[str, Model]` is shown and keeps the model.
    """
    shown: list[str] = []
    members: list[type[BaseModel]] = [model]
    member_next = False
    for part in loc:
        if member_next:
            member_next = False
            members = [m for m in members if _tagged(m, part)] or members
            continue
        shown.append(str(part))
        owner = next((m for m in members if part in m.model_fields), None)
        if owner is not None:
            annotation = owner.model_fields[part].annotation
            members = _models_in(annotation)
            member_next = _is_union(annotation)
    return ".".join(shown) or "(top level)", sorted(members[0].model_fields) if len(members) == 1 else []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The BaseModel classes inside an annotation like `Model`, `A | B | None`, `list[Model]`, `dict[str, Model]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _is_union(annotation: Any) -> bool:
    """A union of two or more types besides None (`X | None` alone is not: pydantic adds no member to the location)."""
    return get_origin(annotation) in (Union, UnionType) and len([a for a in get_args(annotation) if a is not type(None)]) > 1


def _tagged(model: type[BaseModel], tag: object) -> bool:
    """`tag` is the value of one of the model's Literal fields: the discriminator of a tagged union."""
    return any(get_origin(f.annotation) is Literal and tag in get_args(f.annotation) for f in model.model_fields.values())
