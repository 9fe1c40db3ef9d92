"""What must hold before `l1ml deliver` writes anything: every unmet condition is named, all at once.

1. The run's training finished (`run.json`, manifest, recorded inputs), its latest `l1ml verify` passed, on all of
   its test events, and nothing it checked has changed since: the content hashes of config, thresholds,
   normalisation, training manifest, recorded inputs, the events file, model and firmware projects equal the report's.
2. A run with RTL (`l1ml convert --rtl`: a project simulated with Verilator) delivers it: its latest verification
   has the `rtl` check, passed, and vouches for the RTL's folder (so the fingerprint of condition 1 covers it).
3. A synthesis of the same HLS project (same content hash) finished, and its C-synthesis report meets the hw
   target's budgets (latency, clock, resource fractions); or no HLS synthesis is wanted (`--no-synthesis`): then the
   delivery is RTL-only firmware when the run has verified RTL, and emulator-only otherwise.
4. The version is new for this model: a delivered version is never overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from l1ml.documents import SynthJob, SynthResult, VerifyReport, read
from l1ml.errors import L1mlError
from l1ml.firmware.project import VERILATOR, FirmwareProject, open_project
from l1ml.runfolder import fingerprint, require_trained
from l1ml.runs import tree_hash
from l1ml.synth.db import JobDB
from l1ml.synth.jobs import read_job

VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
RTL_CHECK = "rtl"  # the verify checks of the RTL (Verilator against the C-simulation and the emulator) start so


class DeliveryRefused(L1mlError):
    """The gate's answer: one line per unmet condition."""

    def __init__(self, run_dir: Path, problems: list[str]):
        self.problems = problems
        super().__init__("delivery refused:\n  - " + "\n  - ".join(problems), path=run_dir)


@dataclass
class Synthesis:
    """The synthesis a firmware delivery is made of: the job and its recorded result."""

    job_id: str
    job_dir: Path
    result: SynthResult
    spec: SynthJob


@dataclass
class Gate:
    run_dir: Path
    report: VerifyReport  # verify/report.json
    projects: list[FirmwareProject]  # the projects the report vouches for: the verified one, then those checked against it
    synthesis: Synthesis | None

    @property
    def project(self) -> FirmwareProject:
        """The verified (C-simulated) project: the one synthesised and delivered with the test vectors."""
        return self.projects[0]

    @property
    def rtl(self) -> FirmwareProject | None:
        """The verified RTL (simulated with Verilator), if the run has one."""
        return next((p for p in self.projects if p.simulated_by == VERILATOR), None)

    @property
    def rtl_checks(self) -> list[dict]:
        return rtl_checks(self.report)

    @property
    def kind(self) -> str:
        """The delivery's kind: firmware with a synthesis or with verified RTL (RTL-only), else emulator-only."""
        return "firmware" if self.synthesis is not None or self.rtl is not None else "emulator-only"

    @property
    def released(self) -> list[FirmwareProject]:
        """The projects its firmware/ carries: every one the report vouches for with a synthesis, the RTL alone without."""
        return self.projects if self.synthesis is not None else [p for p in self.projects if p.simulated_by == VERILATOR]


def check_version(version: str) -> str:
    if not VERSION_RE.match(version or ""):
        raise L1mlError("a version is X.Y.Z (three non-negative integers, no leading zeros), or 'next'",
                        key="--version", value=version)
    return version


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def check(run_dir: Path, version_dir: Path, *, synthesis: bool, db=None) -> Gate:
    """Check every condition for delivering `run_dir` to `version_dir`; raise DeliveryRefused naming each one unmet."""
    run_dir = Path(run_dir)
    require_run(run_dir)
    problems: list[str] = []
    report, projects = _verify_condition(run_dir, problems)
    if report is not None:
        _rtl_condition(run_dir, report, problems)
    found = None
    if synthesis and projects:
        found = _synthesis_condition(run_dir, projects[0], problems, db)
    if version_dir.exists():
        problems.append(already_delivered(version_dir))
    if problems:
        raise DeliveryRefused(run_dir, problems)
    return Gate(run_dir, report, projects, found)


def require_run(run_dir: Path) -> None:
    """Only a finished training run has what a delivery needs (thresholds, input scaling, test events)."""
    if (run_dir / "byo.json").is_file() and not (run_dir / "run.json").is_file():
        raise L1mlError("a model converted with --out has no thresholds or input scaling to deliver; deliver the "
                        "training run it came from", path=run_dir)
    require_trained(run_dir, "deliver", check_events=False)  # the gate names changed events among all its findings


def already_delivered(version_dir: Path) -> str:
    return (f"version {version_dir.name} of {version_dir.parent.name} was already delivered ({version_dir}); "
            "a delivered version is never overwritten: give a new --version")


def _verify_condition(run_dir: Path, problems: list[str]) -> tuple[VerifyReport | None, list[FirmwareProject]]:
    path = run_dir / "verify" / "report.json"
    if not path.is_file():
        problems.append(f"the run was never verified: run `l1ml verify {run_dir}`")
        return None, []
    try:
        report = read(path, VerifyReport, again=f"run `l1ml verify {run_dir}` again")
    except L1mlError as exc:  # an older l1ml's report, or a damaged one
        problems.append(str(exc))
        return None, []
    failed = [name for name in report.failed_checks if not name.startswith(RTL_CHECK)]  # the RTL's: _rtl_condition
    if not report.passed and (failed or not report.failed_checks):
        problems.append(f"the latest verification failed ({', '.join(failed or ['no checks'])}): see {path}")
    if report.options.get("events") is not None:
        problems.append(f"the latest verification ran on part of the test events (--events {report.options['events']}), "
                        f"so its thresholds were not compared: run `l1ml verify {run_dir}` without --events")
    if not report.checked_firmware:  # verify names at least the project it verified
        problems.append(f"the verify report {path} names no firmware it checked: run `l1ml verify {run_dir}` again")
        return report, []
    # the report names folders as verify was given them: re-anchor them on run_dir, which may have moved
    checked = [run_dir / "firmware" / Path(d).name for d in report.checked_firmware]
    recorded, now = report.fingerprint, fingerprint(run_dir, checked)
    changed = sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))
    if now.get("events", "").startswith("not usable: "):
        problems.append(now["events"].removeprefix("not usable: "))
        changed.remove("events")
    if changed:
        problems.append(f"the run has changed since it was verified ({', '.join(changed)}): run `l1ml verify {run_dir}` again")
    try:
        return report, [open_project(d) for d in checked]
    except L1mlError as exc:  # a verified project is gone or damaged
        problems.append(f"{exc}: run `l1ml convert {run_dir}` and `l1ml verify {run_dir}` again")
        return report, []


def rtl_checks(report: VerifyReport | None) -> list[dict]:
    """The verify report's checks of the RTL."""
    return [c for c in report.checks if str(c.get("name", "")).startswith(RTL_CHECK)] if report is not None else []


def _rtl_condition(run_dir: Path, report: VerifyReport, problems: list[str]) -> None:
    """A run with RTL delivers it: the report's rtl check passed, and the report vouches for the RTL's folder."""
    folders = _rtl_folders(run_dir)
    checks = rtl_checks(report)
    if not folders and not checks:
        return
    where = f" ({', '.join(f'firmware/{name}/' for name in folders)})" if folders else ""
    again = f"`l1ml verify {run_dir}`"
    if not checks:
        problems.append(f"the run has RTL{where} that its latest verification did not check with Verilator (no "
                        f"'{RTL_CHECK}' check in {run_dir / 'verify' / 'report.json'}): run {again}")
        return
    failed = [c for c in checks if not c.get("passed")]
    if failed:
        why = "; ".join(f"{c['name']}: {_why(c)}" for c in failed)
        problems.append(f"the RTL{where} failed its check in the latest verification ({why}): see "
                        f"{run_dir / 'verify' / 'report.json'}; run `l1ml convert {run_dir} --rtl` and {again} again")
        return
    if not all(c.get("events") for c in checks):  # a delivery says on how many events the RTL was verified
        problems.append(f"the latest verification's check of the RTL{where} compared no events: run {again} again")
        return
    covered = {Path(d).name for d in report.checked_firmware}
    unvouched = [name for name in folders if name not in covered]
    if unvouched:
        problems.append(f"the verify report does not vouch for firmware/{unvouched[0]}/ (not in its checked_firmware), "
                        f"so a change to it would go unnoticed: run {again} again")


def _why(check: dict) -> str:
    return check.get("message") or f"{check.get('mismatches')} of {check.get('events')} events differ"


def _rtl_folders(run_dir: Path) -> list[str]:
    """The folders under firmware/ of the projects simulated with Verilator (a damaged project is not counted here:
    the fingerprint names it, if verify checked it)."""
    found = []
    for convert in sorted((run_dir / "firmware").glob("*/convert.json")):
        try:
            project = open_project(convert.parent)
        except L1mlError:
            continue
        if project.simulated_by == VERILATOR:
            found.append(convert.parent.name)
    return found


def _synthesis_condition(run_dir: Path, project: FirmwareProject, problems: list[str], db) -> Synthesis | None:
    wanted = tree_hash(project.project_dir)
    db = db or JobDB()
    matching, unreadable = [], []
    for job in db.jobs(None, "kind = 'hls'"):
        if (Path(job.job_dir) / "job.json").is_file():  # a job folder removed by hand is no synthesis
            try:
                spec = read_job(job.job_dir)
            except L1mlError as exc:  # an older l1ml's job: whether it synthesised this project is not known
                unreadable.append(str(exc))
                continue
            if spec.project_hash == wanted:
                matching.append((job, spec))
    hint = f"`l1ml synth submit {run_dir}`, then `l1ml synth wait`"
    if not matching:
        problems.append(f"no synthesis of this firmware project (content hash {wanted[:12]}) in the job database "
                        f"{db.path}: run {hint}, or give --no-synthesis for an emulator-only delivery"
                        + (f"; {len(unreadable)} of its jobs cannot be read, the first: {unreadable[0]}" if unreadable else ""))
        return None
    done = [(job, spec) for job, spec in matching if job.state == "done"]
    if not done:
        states = ", ".join(f"{job.id} {job.state}" + (f" ({job.message})" if job.message else "") for job, _ in matching)
        problems.append(f"no synthesis of this firmware project has finished ({states}): wait for it, or run {hint}")
        return None
    # the newest finished job, preferring one that exported the IP (a firmware delivery carries it)
    job, spec = max(done, key=lambda js: ("export" in js[1].steps, js[0].submitted))
    try:
        result = job.recorded_result()
    except L1mlError as exc:  # recorded by an older l1ml
        problems.append(str(exc))
        return None
    if result is None:  # a job is done once its result is recorded
        raise L1mlError("a finished job without a recorded result: the job database was edited", key="JOB", value=job.id)
    over = [f"{row.item} {row.value:g} > {row.budget:g}" for row in result.budget if not row.ok]
    if not result.budget:
        why = result.budget_unknown or "no C-synthesis report or hw target"
        problems.append(f"synthesis job {job.id} has no budget comparison ({why})")
    elif over:
        problems.append(f"synthesis job {job.id} is over the hw target's budgets: {'; '.join(over)}")
    return Synthesis(job.id, Path(job.job_dir), result, spec)
