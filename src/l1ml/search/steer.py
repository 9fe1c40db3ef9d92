"""`l1ml search CONFIG`: the steering process. It asks Optuna for parameters, runs every trial as a job of the job
machinery (`l1ml.synth`: local queue, Slurm, HTCondor), and tells Optuna each trial's values once its job ended.

Everything it knows is in two databases, so it can be stopped (or killed) and started again with the same command:
Optuna's storage holds the trials and their parameters, the job database the jobs of every trial. A trial is found
again by its jobs' identities (the trial folder and the attempt), never submitted twice, and each study ends with
exactly `budget.trials` trials (failed ones included: a failure is told with its reason).

A trial job stopped at its wall time (the local queue's time limit, Slurm's `--signal` before the limit, HTCondor's
MaxRuntime) is submitted again with --resume, up to `budget.resumes` times; it continues its training run from the
last checkpoint. Any other end of a job (out of memory, an error, a cancel) fails the trial with the job's message.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from l1ml.config.hw import load_target
from l1ml.config.loader import load_yaml, validate_config
from l1ml.config.search import SearchConfig, apply, check_space
from l1ml.config.train import TrainConfig
from l1ml.data.training import resolve_events_file
from l1ml.documents import JobSpec, SearchStudy, TrialResult, TrialSpec, read
from l1ml.errors import L1mlError
from l1ml.runs import write_atomic
from l1ml.search import segments as seg
from l1ml.search import space
from l1ml.search import study as st
from l1ml.search import trial as tr
from l1ml.synth.db import Job, JobDB
from l1ml.synth.jobs import trial_spec
from l1ml.synth.outcome import FINAL
from l1ml.synth.queue import backend_for, submit_spec
from l1ml.synth.queue import status as refresh_jobs
from l1ml.synth.results import TRIAL_RESULT

if TYPE_CHECKING:
    import optuna

SEARCH_DIR = "search"
WALL_TIME_EXIT = 143  # SIGTERM: the signal a batch system sends before the wall time (l1ml exits 128 + 15)


@dataclass
class SearchOptions:
    backend: str = "local"
    trials: int | None = None  # per study; default: search.budget.trials
    parallel: int | None = None  # default: search.budget.parallel
    runs_root: Path = Path("runs")
    name: str | None = None  # the study folder's name; default: the config's name
    storage: str | None = None  # Optuna RDB URL; default: SQLite in the study folder
    poll_s: float | None = None  # seconds between looks at the jobs; default 0.5 on the local queue, 10 on a batch system


@dataclass
class Timing:
    """Seconds the steering process spent per activity (benchmarks/search.py reads them from status.json)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, what: str, since: float) -> None:
        self.seconds[what] += time.perf_counter() - since


def load_search_config(path: str | Path) -> tuple[dict, SearchConfig]:
    """The raw mapping and the validated config; every corner of the space checked as a train config."""
    _text, data = load_yaml(path)
    cfg = validate_config(data, SearchConfig, source=path)
    check_space(data, cfg, str(path))
    return data, cfg


def config_digest(cfg: SearchConfig) -> str:
    """What identifies a search: the config but its budget (more trials or workers continue the same study)."""
    dumped = cfg.model_dump(mode="json", by_alias=True, exclude={"search": {"budget"}})
    return hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()


def job_model(doc: SearchStudy, segment: str, number: int) -> str:
    return f"{doc.name}/{segment}/{number:04d}"


class Steering:
    def __init__(self, folder: st.StudyFolder, doc: SearchStudy, data: dict, cfg: SearchConfig, options: SearchOptions,
                 events: dict[str, Path], backend, log):
        self.folder, self.doc, self.data, self.cfg, self.options, self.events, self.log = folder, doc, data, cfg, options, events, log
        self.budget = cfg.search.budget
        self.trials = doc.trials
        self.parallel = options.parallel or self.budget.parallel
        self.poll_s = options.poll_s or (0.5 if options.backend == "local" else 10.0)  # a batch system's queries cost it more
        # The local queue's runners record how their jobs ended in the job database themselves: the steering reads it
        # every poll and asks the queue to look for lost runners every 5 s. A batch system is asked every poll.
        self.refresh_s = max(self.poll_s, 5.0) if options.backend == "local" else self.poll_s
        self.backend, self.db = backend, backend.db
        self.hw = load_target(cfg.firmware.target)
        self.timing = Timing()
        self.told = 0
        self.studies = st.open_studies(folder, doc, cfg, create=True)
        self._enqueue_base()
        # The steering process is the storage's only writer: what it asked and what still runs is read once, then kept
        # here (segment -> trial number -> Optuna's trial id; segment -> trials asked).
        self.running: dict[str, dict[int, int]] = {}
        self.asked: dict[str, int] = {}
        for segment, study in self.studies.items():
            trials = self._trials(study, "RUNNING", "COMPLETE", "FAIL", "PRUNED")
            self.running[segment] = {t.number: t._trial_id for t in trials if t.state.name == "RUNNING"}
            self.asked[segment] = len(trials)

    # -------------------------------------------------------------------------------------------- the loop

    def run(self) -> None:
        last_refresh = 0.0
        while True:
            t0 = time.perf_counter()
            others = sum(self.timing.seconds.values())
            if t0 - last_refresh >= self.refresh_s:
                refresh_jobs(self.db)
                last_refresh = t0
            for segment, study in self.studies.items():
                for number, trial_id in list(self.running[segment].items()):
                    self._follow(segment, study, number, trial_id)
            # looking at the jobs; the results read, tells and resubmissions meanwhile are timed on their own
            self.timing.seconds["refresh"] += time.perf_counter() - t0 - (sum(self.timing.seconds.values()) - others)
            while self._running() < self.parallel and self._studies_to_ask():
                self._ask(*self._studies_to_ask()[0])
            if self._running() == 0 and not self._studies_to_ask():
                return
            time.sleep(self.poll_s)

    def _running(self) -> int:
        return sum(len(trials) for trials in self.running.values())

    def _studies_to_ask(self) -> list[tuple[str, optuna.Study]]:
        """Studies with trials still to ask, the one with the fewest first (segments share the workers)."""
        order = sorted(self.studies, key=lambda segment: self.asked[segment])
        return [(segment, self.studies[segment]) for segment in order if self.asked[segment] < self.trials]

    @staticmethod
    def _trials(study: optuna.Study, *states: str) -> list[optuna.trial.FrozenTrial]:
        import optuna

        return study.get_trials(deepcopy=False, states=tuple(optuna.trial.TrialState[s] for s in states))

    def _enqueue_base(self) -> None:
        """The config as written (with its segment's overrides) is the first trial of each study, when it is a point of
        the space."""
        if not self.cfg.search.include_base:
            return
        for segment, study in self.studies.items():
            overrides = self._segment(segment).overrides if segment != st.NO_SEGMENTS else {}
            base = space.base_values(apply(self.data, overrides), self.cfg.search.parameters)
            if base is None:
                self.log(f"{segment}: the config as written is not a point of the search space (a value outside its range "
                         "or choices, or not written): it is not a trial")
            elif not study.get_trials(deepcopy=False):
                study.enqueue_trial(base, user_attrs={"base": True})

    # -------------------------------------------------------------------------------------------- asking

    def _ask(self, segment: str, study: optuna.Study) -> None:
        t0 = time.perf_counter()
        trial = study.ask()
        self.timing.add("ask", t0)
        self.running[segment][trial.number] = trial._trial_id
        self.asked[segment] += 1
        self._start(segment, study, trial.number, trial)

    def _start(self, segment: str, study: optuna.Study, number: int, trial: optuna.trial.Trial) -> None:
        """Write the trial folder and submit its first job; a config the parameters make invalid fails the trial."""
        t0 = time.perf_counter()
        values = space.suggest(trial, self.cfg.search.parameters)  # already suggested values are returned as they are
        trial_dir = self.folder.trial_dir(segment, number)
        try:
            self._write_trial(trial_dir, segment, number, values)
        except L1mlError as exc:
            self._tell_failed(segment, study, number, f"its parameters make no valid train config: {exc}")
            return
        job = self._submit(segment, number, attempt=1)
        self.timing.add("submit", t0)
        self.log(f"{segment}/{number}: job {job.id} ({_params(values)})")

    def _write_trial(self, trial_dir: Path, segment: str, number: int, values: dict[str, Any]) -> None:
        train = apply(self.data, {**self._segment(segment).overrides, **values} if segment != st.NO_SEGMENTS else values)
        train["name"] = f"{self.cfg.name}-{segment}-t{number:04d}" if segment != st.NO_SEGMENTS else f"{self.cfg.name}-t{number:04d}"
        train["data"]["events"] = str(self.events[segment])
        if segment != st.NO_SEGMENTS and self._segment(segment).select.signals:
            train["data"]["signals"] = self._segment(segment).select.signals
        text = yaml.safe_dump(train, sort_keys=False)
        validate_config(yaml.safe_load(text), TrainConfig, source=trial_dir / tr.CONFIG)
        trial_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(trial_dir / tr.CONFIG, f"# trial {number} of search {self.doc.name}" +
                     (f", segment {segment}" if segment != st.NO_SEGMENTS else "") + f": {_params(values)}\n" + text)
        search = self.cfg.search
        TrialSpec(study=str(self.folder.root), segment=segment, number=number, params=values,
                  objectives=[o.model_dump(mode="json") for o in search.objectives],
                  constraints=search.constraints.model_dump(mode="json"), signals=train["data"]["signals"]).write(trial_dir / tr.SPEC)

    def _segment(self, name: str):
        return next(s for s in self.cfg.segments if s.name == name)

    # -------------------------------------------------------------------------------------------- jobs

    def _spec(self, segment: str, number: int, attempt: int) -> JobSpec:
        time_s = self.budget.trial_time
        return trial_spec(self.folder.trial_dir(segment, number), model=job_model(self.doc, segment, number),
                          part=self.hw.part, clock_ns=self.hw.clock_periods_ns[0], mem_gb=self.budget.trial_mem_gb,
                          time_s=time_s, attempt=attempt, signal_before_s=max(5, min(120, time_s // 10)))

    def jobs_of(self, segment: str, number: int) -> list[Job]:
        """The jobs of a trial, one per attempt, in order (found by their identities: trial folder and attempt)."""
        found = {j.dedup_key: j for j in self.db.jobs(None, "model = ?", (job_model(self.doc, segment, number),))}
        jobs = []
        for attempt in range(1, self.budget.resumes + 2):
            job = found.get(self._spec(segment, number, attempt).dedup_key)
            if job is None:
                break
            jobs.append(job)
        return jobs

    def _submit(self, segment: str, number: int, attempt: int) -> Job:
        return submit_spec(self._spec(segment, number, attempt), self.backend, self.db)

    def _follow(self, segment: str, study: optuna.Study, number: int, trial_id: int) -> None:
        """Look at a running trial's job: tell the trial once its job ended, or resubmit it after a wall-time stop."""
        import optuna

        jobs = self.jobs_of(segment, number)
        if not jobs:  # asked, but the steering process stopped before its job was submitted
            self._start(segment, study, number, optuna.trial.Trial(study, trial_id))
            return
        job = jobs[-1]
        if job.state not in FINAL:
            return
        t0 = time.perf_counter()
        result_file = self.folder.trial_dir(segment, number) / TRIAL_RESULT
        if job.state == "done" or (stopped_at_wall_time(job) and result_file.is_file()):  # stopped after its result
            try:
                result = read(result_file, TrialResult)
            except L1mlError as exc:
                self._tell_failed(segment, study, number, str(exc))
                return
            self.timing.add("result", t0)
            self._tell_complete(segment, study, number, result)
            return
        if stopped_at_wall_time(job) and len(jobs) <= self.budget.resumes:
            again = self._submit(segment, number, attempt=len(jobs) + 1)
            self.log(f"{segment}/{number}: stopped at its wall time; resumed as job {again.id} "
                     f"({len(jobs)} of {self.budget.resumes} resumes)")
            return
        reason = f"job {job.id} {job.state}: {job.message}"
        if stopped_at_wall_time(job):
            reason += f" (stopped at its wall time {len(jobs)} times: raise search.budget.trial_time or resumes)"
        self._tell_failed(segment, study, number, reason)

    # -------------------------------------------------------------------------------------------- telling

    def _tell_complete(self, segment: str, study: optuna.Study, number: int, result: TrialResult) -> None:
        import optuna

        t0 = time.perf_counter()
        handle = optuna.trial.Trial(study, self.running[segment].pop(number))
        for i, value in enumerate(result.constraints):
            handle.set_constraint(f"c{i}", value)
        study.tell(number, result.values)
        self.timing.add("tell", t0)
        self.told += 1
        values = ", ".join(f"{label} {v:.4g}" for label, v in zip(self.doc.objectives, result.values))
        self.log(f"{segment}/{number}: {values}" + ("" if result.feasible else " (misses the constraints)"))

    def _tell_failed(self, segment: str, study: optuna.Study, number: int, reason: str) -> None:
        import optuna

        optuna.trial.Trial(study, self.running[segment].pop(number)).set_user_attr("reason", reason[:2000])
        study.tell(number, state=optuna.trial.TrialState.FAIL)
        self.told += 1
        self.log(f"{segment}/{number}: failed: {reason}")


def stopped_at_wall_time(job: Job) -> bool:
    """The job ended because its wall time came: the local queue's limit, or the SIGTERM a batch system sends first."""
    return job.state == "timeout" or (job.state == "failed" and job.exit_code == WALL_TIME_EXIT)


def _params(values: dict[str, Any]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1] if k.count('.') == 1 else k}={_short(v)}" for k, v in values.items())


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------------ the command


def search(config_path: str | Path, options: SearchOptions, log=None) -> Path:
    """Run (or continue) the search of `config_path` until every study has its trials; returns the study folder."""
    from l1ml.search.report import write_status

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    config_path = Path(config_path)
    data, cfg = load_search_config(config_path)
    # what can be refused is, before the study is written: the backend and the trial's request, the events
    backend = backend_for(options.backend, JobDB())
    backend.check_fits(cfg.search.budget.trial_mem_gb, 1)
    train = validate_config({k: v for k, v in data.items() if k not in ("search", "segments")}, TrainConfig, source=config_path)
    source = resolve_events_file(train, config_path)[0].resolve()  # a data config is generated (or found in its cache)
    folder = st.StudyFolder((Path(options.runs_root) / SEARCH_DIR / (options.name or cfg.name)).absolute())
    digest = config_digest(cfg)
    with folder.steering():
        doc = _attach(folder, cfg, config_path, digest, options)
        events = _segment_data(folder, source, cfg, config_path, log)
        steering = Steering(folder, doc, data, cfg, options, events, backend, log)
        log(f"search {doc.name}: {steering.trials} trials per study, {len(doc.segments)} "
            f"{'studies' if len(doc.segments) > 1 else 'study'}, {steering.parallel} at once on {options.backend}; "
            f"stop it any time and start the same command again to continue")
        try:
            steering.run()
        except KeyboardInterrupt:
            log(f"steering stopped; the trial jobs still queued or running go on: continue with the same command "
                f"(`l1ml synth cancel JOB` stops one); the study is {folder.root}")
            raise
        finally:
            write_status(folder, timing=dict(steering.timing.seconds), told=steering.told)
        if cfg.search.verify_front:
            from l1ml.search.front import verify_front

            verify_front(folder, steering.db, options.backend, log)
            write_status(folder, timing=dict(steering.timing.seconds), told=steering.told)
    return folder.root


def _attach(folder: st.StudyFolder, cfg: SearchConfig, config_path: Path, digest: str, options: SearchOptions) -> SearchStudy:
    """The study folder's document: made on the first start, checked against the config on every later one."""
    if folder.search_json.is_file():
        doc = folder.read()
        if doc.config_hash != digest:
            changed = "has changed since" if Path(doc.config_path) == config_path.resolve() else f"is not {doc.config_path}, with which"
            raise L1mlError(f"the config {changed} the study {folder.root} started (its name, data, model, objectives or "
                            "parameters; the budget may change): continue with that config, or give --name for a new study",
                            path=config_path)
        if options.storage and options.storage != doc.storage:
            raise L1mlError(f"the study keeps its trials in {st.storage_url(folder, doc)}", key="--storage", value=options.storage)
        update = {"backend": options.backend, "trials": options.trials or doc.trials}  # jobs submitted stay where they run
        if any(getattr(doc, k) != v for k, v in update.items()):
            doc = doc.model_copy(update=update)
            doc.write(folder.search_json)
        return doc
    folder.root.mkdir(parents=True, exist_ok=True)
    st.storage_of(options.storage or st.default_storage(folder))  # a URL that does not work is refused before the study is written
    write_atomic(folder.config, config_path.read_text())
    doc = st.new_study_document(folder, cfg, config_path, digest, options.storage, options.backend,
                                options.trials or cfg.search.budget.trials)
    doc.write(folder.search_json)
    return doc


def _segment_data(folder: st.StudyFolder, source: Path, cfg: SearchConfig, config_path: Path, log) -> dict[str, Path]:
    """The events file of every segment: the config's own, or a selection of it written once into the study folder."""
    if not cfg.segments:
        return {st.NO_SEGMENTS: source}
    events = {}
    for segment in cfg.segments:
        signals = segment.select.signals or cfg.data.signals
        out = seg.prepare(segment, source, [cfg.data.background, *signals], folder.segment_dir(segment.name), str(config_path))
        events[segment.name] = out.resolve()
    log(f"segments prepared: {', '.join(events)}")
    return events
