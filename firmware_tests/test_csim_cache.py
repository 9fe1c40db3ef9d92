"""The C-simulation cache: concurrent builds of one project share one library; a cache that cannot be written is an error
that names the folder and the reason, never a silent success."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict

import numpy as np
import pytest

from l1ml.errors import L1mlError
from l1ml.firmware import csim

# the smallest firmware the batch driver accepts: a value type with to_double() and a top function of two inputs
TINY = csim.Sources(
    files={"tiny.h": "struct num { double v; num(double x = 0) : v(x) {} double to_double() const { return v; } };\n"
                     "void tiny(num in[2], num out[1]);\n",
           "tiny.cpp": '#include "tiny.h"\nvoid tiny(num in[2], num out[1]) { out[0] = num(in[0].v + 2 * in[1].v); }\n'},
    units=["tiny.cpp"], include_dirs=["."], top=csim.TopFunction("tiny", "tiny.h", "num", 2, "num", 1))

BUILD_WHEN_TOLD = """
import json, os, sys, time
from pathlib import Path
from l1ml.firmware import csim
spec = json.loads(sys.argv[2])
sources = csim.Sources(spec["files"], spec["units"], spec["include_dirs"], csim.TopFunction(**spec["top"]))
Path(sys.argv[1] + f".ready-{os.getpid()}").touch()
while not Path(sys.argv[1]).exists():
    time.sleep(0.005)
result = csim.build(sources)
print(json.dumps([str(result.library), result.cached]))
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("L1ML_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_two_processes_building_one_project_share_the_library(cache, tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_WHEN_TOLD, str(go), json.dumps(asdict(TINY))], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both start compiling now; the second to finish finds the first one's folder in place
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    results = [json.loads(out) for out, _ in outputs]
    assert results[0][0] == results[1][0], "one library for one content hash"
    assert [cached for _, cached in results] == [False, False], "both compiled: the second rename met the first's folder"
    library = csim.CsimLibrary(csim.build(TINY))
    assert library.build.cached and library.run(np.array([[1.0, 2.0]])).tolist() == [[5.0]]
    assert [p.name for p in (cache / "csim").iterdir()] == [library.build.library.parent.name], "no build folder is left"


def test_a_cache_that_cannot_take_the_build_is_an_error_naming_it(cache):
    place = cache / "csim" / csim.content_hash(TINY)[:24]
    place.parent.mkdir(parents=True)
    place.write_text("a file where the build folder should go")
    with pytest.raises(L1mlError, match=rf"{place}: cannot store the compiled C-simulation in the cache: Not a directory"):
        csim.build(TINY)
    assert sorted(p.name for p in place.parent.iterdir()) == [place.name], "the build folder is removed"
