"""Files l1ml writes appear whole or not at all, also when several writers write the same file at once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from l1ml.runs import atomic_path, write_atomic, write_json_atomic


def _hammer(write, n_writers: int = 8, rounds: int = 60) -> None:
    """`write(i)` from several threads at once, many times; every call must succeed."""
    with ThreadPoolExecutor(n_writers) as pool:
        for future in [pool.submit(lambda k: [write(k * rounds + r) for r in range(rounds)], k) for k in range(n_writers)]:
            future.result()


def test_concurrent_writers_of_one_file_never_collide(tmp_path):
    path = tmp_path / "doc.json"
    _hammer(lambda i: write_json_atomic(path, {"writer": i, "payload": "x" * 4096}))
    assert json.loads(path.read_text())["payload"] == "x" * 4096
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"], "no temporary file is left"


def test_concurrent_job_results_never_collide(tmp_path):
    """Two ends of one job (a runner and a `synth` refresh) may record its result at the same moment."""
    from l1ml.documents import SynthResult
    from l1ml.synth.db import JobDB
    from l1ml.synth.runner import save_result

    db, job_dir = JobDB(tmp_path / "state"), tmp_path / "job"
    job_dir.mkdir()
    _hammer(lambda i: save_result(db, job_dir, SynthResult(id="j", state="done", started=0, ended=i, message="")), n_writers=4,
            rounds=25)
    assert json.loads((job_dir / "result.json").read_text())["state"] == "done"
    assert [p.name for p in job_dir.iterdir()] == ["result.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "data.bin"
    write_atomic(path, b"old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed half-way")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["data.bin"]
    write_atomic(path, "new text")
    assert path.read_text() == "new text"
