"""Validated configuration: YAML files read safely (plain data, no duplicated keys) into strict pydantic models that reject unknown keys."""

from l1ml.config.loader import StrictModel, load_config, load_yaml, validate_config

__all__ = ["StrictModel", "load_config", "load_yaml", "validate_config"]
