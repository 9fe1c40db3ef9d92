"""A training run's own documents, which make the folder stand alone: `run.json` (its state) and `inputs.json` (every
input it used, by path and SHA-256).

Every later step (`convert`, `verify`, `synth`, `deliver`, `train --resume`) reads the events through `inputs.json`,
from any working directory and on any node: the recorded absolute path first, then the same path relative to the run
(a run copied together with its data), and only if the file's size and SHA-256 are the recorded ones. Nothing is ever
regenerated behind the user's back: a missing or changed file is one error naming it, its recorded hash and the command
that makes it again.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
from pathlib import Path

from l1ml.documents import DataConfigRecord, FileRecord, RunInputs, RunState, read
from l1ml.errors import L1mlError
from l1ml.runs import fingerprint as files_fingerprint
from l1ml.runs import sha256_file

RUN = "run.json"
INPUTS = "inputs.json"


def remake_hint(inputs: RunInputs) -> str:
    """How to make a run's events file again."""
    if inputs.data_config is not None:
        return (f"`l1ml data generate {inputs.data_config.path} --out {inputs.events.path}` makes it again (the same "
                f"config and seed give the same events), if that config still has SHA-256 {inputs.data_config.sha256[:12]}…")
    return "it was given to training as a file: restore it from where it came from"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------ run.json


def start_run(run_dir: Path, config_hash: str) -> RunState:
    state = RunState(config_hash=config_hash, status="running", started=_now())
    state.write(run_dir / RUN)
    return state


def read_state(run_dir: Path) -> RunState:
    return read(Path(run_dir) / RUN, RunState, "the run's state")


def end_run(run_dir: Path, status: str, message: str | None = None) -> None:
    state = read_state(run_dir)
    state.status, state.ended, state.message = status, _now(), message  # type: ignore[assignment]
    state.write(run_dir / RUN)


def require_trained(run_dir: str | Path, step: str, check_events: bool = True) -> RunState:
    """A run that later steps may use: training finished (run.json says so, its manifest exists), its inputs are
    recorded and (unless `check_events` is False) its events file is there, unchanged. `step` names the command."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise L1mlError("no such run folder", path=run_dir)
    if not (run_dir / RUN).is_file():
        if (run_dir / "byo.json").is_file():
            raise L1mlError(f"a model converted with --out is not a training run; `l1ml {step}` needs one", path=run_dir)
        raise L1mlError("not a training run (no run.json)", path=run_dir)
    state = read_state(run_dir)
    if state.status != "finished":
        raise L1mlError(f"training did not finish (status {state.status}); `l1ml {step}` takes finished runs only: resume "
                        f"it with `l1ml train {run_dir / 'config.yaml'} --resume {run_dir}`", path=run_dir / RUN, key="status")
    missing = [n for n in ("config.yaml", "metrics.json", "manifest.json", INPUTS) if not (run_dir / n).is_file()]
    if missing:
        raise L1mlError(f"training finished but {', '.join(missing)} is missing: the run folder was edited by hand; "
                        "train it again", path=run_dir)
    if check_events:
        events_file(run_dir)
    return state


# ------------------------------------------------------------------------------------------------ inputs.json


def record_inputs(run_dir: Path, events: Path, data_config: Path | None) -> RunInputs:
    events = Path(events).resolve()
    record = FileRecord(path=str(events), relative_to_run=os.path.relpath(events, Path(run_dir).resolve()),
                        bytes=events.stat().st_size, sha256=sha256_file(events))
    config = None
    if data_config is not None:
        data_config = Path(data_config).resolve()
        config = DataConfigRecord(path=str(data_config), sha256=sha256_file(data_config),
                                  as_given=data_config.read_text(encoding="utf-8"))
    inputs = RunInputs(events=record, data_config=config)
    inputs.write(Path(run_dir) / INPUTS)
    return inputs


def read_inputs(run_dir: Path) -> RunInputs:
    return read(Path(run_dir) / INPUTS, RunInputs, "the record of the run's inputs")


def _events_sha256(path: Path) -> str:
    """The SHA-256 of an events file, computed once per command for each version of the file: verify and deliver check
    it at several steps, and real samples are gigabytes. A file changed meanwhile (size, mtime, inode) is hashed again."""
    st = path.stat()
    return _sha256_of(str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@functools.lru_cache(maxsize=16)
def _sha256_of(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    return sha256_file(path)


def events_problem(run_dir: Path, inputs: RunInputs) -> tuple[Path | None, str | None]:
    """The recorded events file as it is now, or why it cannot be used (missing, or not the file training read)."""
    run_dir = Path(run_dir)
    rec = inputs.events
    for candidate in (Path(rec.path), run_dir / rec.relative_to_run):
        if candidate.is_file():
            now = _events_sha256(candidate)
            if candidate.stat().st_size == rec.bytes and now == rec.sha256:
                return candidate, None
            return None, (f"the events file {candidate} has changed since training (recorded SHA-256 {rec.sha256[:12]}…, "
                          f"{rec.bytes} bytes; now {now[:12]}…, {candidate.stat().st_size} bytes); "
                          f"{remake_hint(inputs)}, or train a new run on the new events")
    return None, (f"the events file the run was trained on is missing: not at {rec.path} nor at {rec.relative_to_run} "
                  f"relative to the run (recorded SHA-256 {rec.sha256[:12]}…); {remake_hint(inputs)}")


def events_file(run_dir: str | Path) -> Path:
    """The run's events file, checked against its record; one named error when it is missing or changed."""
    run_dir = Path(run_dir)
    path, problem = events_problem(run_dir, read_inputs(run_dir))
    if problem:
        raise L1mlError(problem, path=run_dir / INPUTS, key="events")
    return path  # type: ignore[return-value]


def fingerprint(target: str | Path, firmware_dirs: list[Path]) -> dict[str, str]:
    """What a verification vouches for (`l1ml.runs.fingerprint`), and for a training run also its events: the recorded
    SHA-256 while the file present is that file, else what is wrong with it."""
    target = Path(target)
    found = files_fingerprint(target, firmware_dirs)
    if (target / INPUTS).is_file():
        inputs = read_inputs(target)
        path, problem = events_problem(target, inputs)
        found["events"] = inputs.events.sha256 if path is not None else f"not usable: {problem}"
    return found
