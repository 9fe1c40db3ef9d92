"""Config validation: unknown keys, bad values and bad YAML each give one message naming file, key and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from l1ml.config.data import DataConfig
from l1ml.config.kinds import KINDS, schema_text
from l1ml.config.loader import load_config
from l1ml.errors import L1mlError

from helpers import ROOT, SMALL_CONFIG, run, write_yaml

GOOD = SMALL_CONFIG.read_text()


def error_for(tmp_path: Path, text: str) -> str:
    path = write_yaml(tmp_path / "c.yaml", text)
    with pytest.raises(L1mlError) as e:
        load_config(path, DataConfig)
    message = str(e.value)
    assert str(path) in message
    return message


def test_repo_configs_are_valid():
    for path in sorted((ROOT / "configs" / "data").glob("*.yaml")):
        load_config(path, DataConfig)


def test_unknown_key_is_an_error_with_suggestion(tmp_path):
    msg = error_for(tmp_path, GOOD.replace("chunk_events:", "chunk_event:"))
    assert "key 'chunk_event'" in msg and "unknown key" in msg and "did you mean 'chunk_events'" in msg


def test_unknown_nested_key(tmp_path):
    msg = error_for(tmp_path, GOOD + "l1:\n  jet:\n    pt_mn: 20\n")
    assert "key 'l1.jet.pt_mn'" in msg and "did you mean 'pt_min'" in msg


def test_bad_value_names_key_and_value(tmp_path):
    msg = error_for(tmp_path, GOOD.replace("events: 400", "events: -5"))
    assert "key 'samples.background.events'" in msg and "-5" in msg


def test_unknown_process(tmp_path):
    """The catalogue's names are checked where it lives (l1ml.data): by `config check data` and before generating."""
    from l1ml.data.generate import generate

    path = write_yaml(tmp_path / "c.yaml", GOOD.replace("process: W_lnu", "process: W_lnux"))
    with pytest.raises(L1mlError) as e:
        generate(path, out=tmp_path / "never.h5")
    msg = str(e.value)
    assert str(path) in msg and "key 'samples.background.processes.0.process', value 'W_lnux': unknown process" in msg
    assert "W_lnu" in msg and not (tmp_path / "never.h5").exists()
    checked = run("config", "check", "data", path)
    assert checked.returncode == 1 and "value 'W_lnux': unknown process" in checked.stderr


def test_fractions_must_add_up(tmp_path):
    msg = error_for(tmp_path, GOOD.replace("fraction: 0.5", "fraction: 0.6"))
    assert "samples.background.processes" in msg and "add up to 1.1" in msg


def test_even_window_rejected(tmp_path):
    msg = error_for(tmp_path, GOOD + "l1:\n  jet:\n    window: 8\n")
    assert "l1.jet.window" in msg and "odd" in msg


def test_missing_required_key(tmp_path):
    msg = error_for(tmp_path, "\n".join(line for line in GOOD.splitlines() if not line.startswith("seed:")))
    assert "key 'seed': required but missing" in msg


def test_several_problems_reported_together(tmp_path):
    msg = error_for(tmp_path, GOOD.replace("seed: 7", "seed: -1").replace("chunk_events: 100", "chunk_events: 0"))
    assert "seed" in msg and "chunk_events" in msg and "also:" in msg


def test_invalid_yaml_gives_line(tmp_path):
    msg = error_for(tmp_path, "name: x\nsamples: [unclosed\n")
    assert "invalid YAML" in msg and "line" in msg


def test_not_a_mapping(tmp_path):
    assert "expected a mapping" in error_for(tmp_path, "- a\n- b\n")
    assert "found empty" in error_for(tmp_path, "")


def test_missing_file(tmp_path):
    with pytest.raises(L1mlError, match="no such file"):
        load_config(tmp_path / "nope.yaml", DataConfig)


def test_safe_load_only(tmp_path):
    msg = error_for(tmp_path, "!!python/object/apply:os.system ['true']\n")
    assert "invalid YAML" in msg


def test_fixed_type_in_config(tmp_path):
    from l1ml.config.loader import StrictModel, validate_config
    from l1ml.config.types import FixedTypeStr

    class M(StrictModel):
        precision: FixedTypeStr

    assert validate_config({"precision": "ap_fixed<16, 6>"}, M, source="x.yaml").precision == "ap_fixed<16,6>"
    for bad, why in [("ap_fixed<0,0>", "W=0"), ("ap_fixed<8,9>", "exceed the total width"), ("float", "not an HLS type")]:
        with pytest.raises(L1mlError, match=why) as e:
            validate_config({"precision": bad}, M, source="x.yaml")
        assert "key 'precision'" in str(e.value) and repr(bad) in str(e.value)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_exported_schemas_are_current(kind):
    committed = ROOT / "schemas" / f"{kind}.schema.json"
    assert committed.exists(), "run `make schemas` and commit schemas/"
    assert json.loads(committed.read_text()) == json.loads(schema_text(kind)), "run `make schemas` and commit schemas/"


def test_schema_rejects_unknown_keys():
    schema = json.loads(schema_text("data"))
    assert schema["additionalProperties"] is False
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values() if d.get("type") == "object")
