"""The import layers of .importlinter hold for the package, and the contract does fail on one backward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.is_file(), reason="import-linter is not installed (make test installs it)")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """lint-imports with the repository's contract, on the package under root/src."""
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / ".importlinter")], cwd=root,
                          capture_output=True, text=True, env=env, timeout=300)


def _copy_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "l1ml", tmp_path / "src" / "l1ml", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_its_layers(tmp_path):
    done = _lint(_copy_package(tmp_path))
    assert done.returncode == 0 and "1 kept, 0 broken" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize(("module", "bad_import", "names"), [
    ("config/loader.py", "from l1ml.deliver import gate  # noqa", ("l1ml.config.loader", "l1ml.deliver.gate")),
    ("emulate/bdt.py", "    from l1ml.verify import run  # noqa", ("l1ml.emulate.bdt", "l1ml.verify.run")),
])
def test_one_backward_import_breaks_the_contract(tmp_path, module, bad_import, names):
    """Also an import inside a function: a layer that needs something above it is a sign it lives in the wrong place."""
    root = _copy_package(tmp_path)
    path = root / "src" / "l1ml" / module
    text = path.read_text()
    if bad_import.startswith(" "):  # into the first function
        head, sep, rest = text.partition("\ndef ")
        name_line, nl, body = rest.partition("\n")
        text = f"{head}{sep}{name_line}{nl}{bad_import}\n{body}"
    else:
        text += f"\n{bad_import}\n"
    path.write_text(text)
    done = _lint(root)
    assert done.returncode != 0 and "0 kept, 1 broken" in done.stdout, done.stdout + done.stderr
    assert all(name in done.stdout for name in names), done.stdout
