"""The search space: Optuna's suggestions for the `search.parameters` of a config, and the config's own values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from l1ml.config.search import LENGTH, Parameter

if TYPE_CHECKING:
    import optuna


def suggest(trial: optuna.trial.Trial, parameters: dict[str, Parameter]) -> dict[str, Any]:
    """Ask the trial for a value of every parameter (Optuna records them under their dotted paths)."""
    values = {}
    for path, p in parameters.items():
        if p.choices is not None:
            values[path] = trial.suggest_categorical(path, p.choices)
        elif p.int_range is not None:
            values[path] = trial.suggest_int(path, p.int_range[0], p.int_range[1], step=int(p.step or 1), log=p.log)
        else:
            values[path] = trial.suggest_float(path, p.float_range[0], p.float_range[1], step=p.step, log=p.log)
    return values


def distributions(parameters: dict[str, Parameter]) -> dict[str, optuna.distributions.BaseDistribution]:
    """The Optuna distribution of every parameter (what `suggest` asks for)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for path, p in parameters.items():
        if p.choices is not None:
            out[path] = CategoricalDistribution(p.choices)
        elif p.int_range is not None:
            out[path] = IntDistribution(p.int_range[0], p.int_range[1], step=int(p.step or 1), log=p.log)
        else:
            out[path] = FloatDistribution(p.float_range[0], p.float_range[1], step=p.step, log=p.log)
    return out


def base_values(train: dict, parameters: dict[str, Parameter]) -> dict[str, Any] | None:
    """The values the config as written has for every parameter, or None when one of them lies outside its range or
    choices (then the config is not a point of the space)."""
    values = {}
    for path, p in parameters.items():
        value = _get(train, path)
        if value is None or not _inside(value, p):
            return None
        values[path] = value
    return values


def _get(config: dict, path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        if isinstance(node, list):
            if part == LENGTH:
                return len(node)
            if not part.isdigit() or int(part) >= len(node):
                return None
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _inside(value: Any, p: Parameter) -> bool:
    if p.choices is not None:
        return value in p.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    low, high = p.int_range or p.float_range
    if p.int_range is not None and (value != int(value) or (value - low) % int(p.step or 1)):
        return False
    return low <= value <= high
