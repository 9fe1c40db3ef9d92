"""What a study holds, for people and tools: `status.json` and its table (`l1ml search status`), the report
(`l1ml search report`: the front plotted, parameter importances, the front's table) and `l1ml search export`."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import warnings
from pathlib import Path
from typing import Any

import yaml

from l1ml.config.loader import load_yaml, validate_config
from l1ml.config.search import SearchConfig
from l1ml.config.train import TrainConfig
from l1ml.documents import SearchStatus, TrialRow, read
from l1ml.errors import L1mlError
from l1ml.runs import atomic_path, write_atomic, write_json_atomic
from l1ml.search import study as st
from l1ml.search import trial as tr
from l1ml.search.front import front
from l1ml.search.objectives import of_run
from l1ml.synth.db import JobDB


def rows(folder: st.StudyFolder, doc, studies, db: JobDB) -> list[TrialRow]:
    """One row per trial (asked or waiting) of every segment, with its jobs' states and the front marked."""
    out = []
    for segment, study in studies.items():
        trials = [t for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
        feasible = {t.number: t.values for t in trials
                    if t.state.name == "COMPLETE" and _feasible(t)}
        on_front = set(front(feasible, doc.directions))
        jobs_by_trial: dict[int, list] = {}
        for job in db.jobs(None, "model LIKE ?", (f"{doc.name}/{segment}/%",)):
            if job.kind == "trial" and Path(job.job_dir, "job.json").is_file() and _in_study(job, folder):
                jobs_by_trial.setdefault(int(job.model.rsplit("/", 1)[-1]), []).append(job)
        for t in trials:
            jobs = jobs_by_trial.get(t.number, [])
            last = jobs[-1] if jobs else None
            run_dir = _run_of(folder, segment, t.number)
            out.append(TrialRow(
                segment=segment, number=t.number, state=t.state.name, params=dict(t.params), values=t.values,
                feasible=_feasible(t) if t.state.name == "COMPLETE" else None, on_front=t.number in on_front,
                job=last.id if last else None, job_state=last.state if last else None,
                wall_s=round(sum(j.elapsed() or 0 for j in jobs), 1) if jobs else None, resumes=max(0, len(jobs) - 1),
                reason=t.user_attrs.get("reason"), run_dir=run_dir, verify=_verified(run_dir), base=bool(t.user_attrs.get("base"))))
    return out


def _feasible(trial) -> bool:
    """Every constraint met (Optuna's convention: a value <= 0)."""
    return all(v <= 0 for v in trial.constraints.values())


def _in_study(job, folder: st.StudyFolder) -> bool:
    """A job of this study folder (another runs root may hold a study of the same name)."""
    try:
        return json.loads(Path(job.job_dir, "job.json").read_text()).get("target", "").startswith(str(folder.root) + "/")
    except (OSError, ValueError):
        return False


def _run_of(folder: st.StudyFolder, segment: str, number: int) -> str | None:
    run = tr.training_run(folder.trial_dir(segment, number))
    return str(run) if run else None


def _verified(run_dir: str | None) -> bool | None:
    path = Path(run_dir) / "verify" / "report.json" if run_dir else None
    if path is None or not path.is_file():
        return None
    try:
        return bool(json.loads(path.read_text()).get("passed"))
    except ValueError:
        return None


def write_status(folder: st.StudyFolder, timing: dict[str, float] | None = None, told: int = 0) -> SearchStatus:
    """status.json from the study's storage and the job database (and the steering's timing, when it wrote it)."""
    doc = folder.read()
    studies = st.open_studies(folder, doc)
    trial_rows = rows(folder, doc, studies, JobDB())
    per_study = doc.trials
    done = all(sum(r.segment == s and r.state in ("COMPLETE", "FAIL") for r in trial_rows) >= per_study for s in doc.segments)
    old = read(folder.status_json, SearchStatus).steering if folder.status_json.is_file() else {}
    steering = dict(old)
    if timing is not None:  # a steering process that ends adds what it spent to what earlier ones did
        for k, v in {**timing, "told": told}.items():
            steering[k] = round(old.get(k, 0.0) + v, 4)
    status = SearchStatus(name=doc.name, created=_now(), objectives=doc.objectives, directions=doc.directions,
                          trials_per_segment=per_study, finished=done, trials=trial_rows, steering=steering)
    status.write(folder.status_json)
    return status


def _config(folder: st.StudyFolder) -> tuple[dict, SearchConfig]:
    _text, data = load_yaml(folder.config)
    return data, validate_config(data, SearchConfig, source=folder.config)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------ the table


def table(status: SearchStatus, front_only: bool = False) -> str:
    """The trials (or the front's) as a text table: segment, trial, state, objectives, front, job (the end of its id,
    which `l1ml synth logs` takes), wall time, resumes, parameters."""
    shown = [r for r in status.trials if r.on_front or not front_only]
    params = sorted({k for r in shown for k in r.params})
    head = ["segment", "trial", "state", *status.objectives, "front", "job", "wall", "resumes", *[_short_key(p) for p in params]]
    lines = []
    for r in shown:
        values = [f"{v:.4g}" for v in r.values] if r.values else ["-"] * len(status.objectives)
        state = r.state.lower() if r.state != "COMPLETE" or r.feasible is not False else "infeasible"
        lines.append([r.segment, str(r.number), state, *values, ("*" if r.on_front else "") + _verdict(r.verify),
                      (r.job or "-").rsplit("-", 1)[-1], f"{r.wall_s:.0f}s" if r.wall_s is not None else "-", str(r.resumes),
                      *[_value(r.params.get(p)) for p in params]])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    text = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [head, *lines]]
    failed = [f"  {r.segment}/{r.number}: {r.reason}" for r in shown if r.reason]
    done = "finished" if status.finished else "still running (or stopped: start the same `l1ml search` again)"
    count = f"{len(shown)} of {len(status.trials)} trials on the front" if front_only else f"{len(status.trials)} trials"
    return "\n".join([*text, *(["failed:", *failed] if failed else []), f"{count}; the search {done}"])


def _verdict(passed: bool | None) -> str:
    return "" if passed is None else (" verified" if passed else " VERIFY FAILED")


def _short_key(path: str) -> str:
    return path.removeprefix("model.").removeprefix("quantization.").removeprefix("training.")


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------------ the report


def report(folder: st.StudyFolder, marks: list[Path] = (), log=print) -> list[Path]:
    """report/front.png (each segment: its trials, the front, the marked runs), report/front.csv, and
    report/importances.json (Optuna's parameter importances per objective); returns the files written."""
    doc = folder.read()
    status = write_status(folder)
    _data, cfg = _config(folder)
    studies = st.open_studies(folder, doc)
    out = folder.report_dir
    out.mkdir(parents=True, exist_ok=True)
    marked = {}
    for run in marks:
        values = of_run(run, cfg.search.objectives, cfg.data.signals)
        if values is None:
            raise L1mlError("cannot mark this run: it needs metrics.json and an `l1ml estimate` with the figures of the "
                            "objectives (run `l1ml estimate` on it)", path=run)
        marked[f"{Path(run).resolve().parent.name} ({Path(run).name})"] = values
    made = [_front_csv(status, out / "front.csv"), _importances(studies, doc, out / "importances.json", log)]
    if len(doc.objectives) >= 2:
        made.append(_plot(status, marked, out / "front.png"))
    else:
        made.append(_plot_history(status, out / "front.png"))
    return made


def _front_csv(status: SearchStatus, path: Path) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        params = sorted({k for r in status.trials for k in r.params})
        writer.writerow(["segment", "trial", *status.objectives, *params, "run_dir", "verified"])
        for r in status.trials:
            if r.on_front:
                writer.writerow([r.segment, r.number, *r.values, *[r.params.get(p) for p in params], r.run_dir, r.verify])
    return path


def _importances(studies, doc, path: Path, log) -> Path:
    import optuna

    found: dict[str, dict] = {}
    for segment, study in studies.items():
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        for i, label in enumerate(doc.objectives):
            sign = -1.0 if doc.directions[i] == "maximize" else 1.0  # PED-ANOVA rates what makes the target low
            if len(complete) < 3 or len({t.values[i] for t in complete}) < 2:
                found.setdefault(segment, {})[label] = None  # too few trials, or nothing varied
                continue
            try:
                with warnings.catch_warnings():  # it warns that it rates what makes the target low: the sign sees to that
                    warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes", category=UserWarning)
                    found.setdefault(segment, {})[label] = optuna.importance.get_param_importances(
                        study, target=lambda t, i=i, s=sign: s * t.values[i], evaluator=optuna.importance.PedAnovaImportanceEvaluator())
            except (ValueError, RuntimeError) as exc:
                log(f"no importances of {label} in {segment}: {exc}")
                found.setdefault(segment, {})[label] = None
    complete = {segment: sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)) for segment, study in studies.items()}
    write_json_atomic(path, {"evaluator": "Optuna PED-ANOVA", "complete_trials": complete,
                             "note": "how much of each objective's spread each parameter explains; tens of trials are needed "
                                     "before the numbers mean anything", "importances": found})
    return path


def _plot(status: SearchStatus, marked: dict[str, list[float]], path: Path) -> Path:
    from l1ml.metrics.plots import save, style

    plt, hep = style()
    segments = sorted({r.segment for r in status.trials})
    fig, axes = plt.subplots(1, len(segments), figsize=(9 * len(segments), 7), squeeze=False)
    x_label, y_label = status.objectives[1], status.objectives[0]
    for ax, segment in zip(axes[0], segments):
        done = [r for r in status.trials if r.segment == segment and r.values]
        ax.scatter([r.values[1] for r in done], [r.values[0] for r in done], color="#b9ac70", s=40, label="trials")
        best = sorted((r for r in done if r.on_front), key=lambda r: r.values[1])
        ax.plot([r.values[1] for r in best], [r.values[0] for r in best], "o-", color="#e42536", label="Pareto front")
        for r in best:
            ax.annotate(str(r.number), (r.values[1], r.values[0]), textcoords="offset points", xytext=(5, 5), fontsize=11)
        for r in (r for r in done if r.base):
            ax.scatter([r.values[1]], [r.values[0]], marker="s", s=140, facecolors="none", edgecolors="black", zorder=5,
                       label=f"the config as written (trial {r.number})")
        for (name, values), colour in zip(marked.items(), ("#5790fc", "#964a8b", "#9c9ca1", "#7a21dd")):
            ax.scatter([values[1]], [values[0]], marker="*", s=300, color=colour, zorder=4, label=name)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(segment if segment != st.NO_SEGMENTS else status.name, fontsize=14, loc="right")
        ax.legend(fontsize=11)
        hep.cms.label(data=False, ax=ax, loc=0, fontsize=14, rlabel="")
    return save(fig, plt, path)


def _plot_history(status: SearchStatus, path: Path) -> Path:
    from l1ml.metrics.plots import save, style

    plt, hep = style()
    fig, ax = plt.subplots(figsize=(9, 7))
    for segment in sorted({r.segment for r in status.trials}):
        done = [r for r in status.trials if r.segment == segment and r.values]
        ax.plot([r.number for r in done], [r.values[0] for r in done], "o", label=segment)
    ax.set_xlabel("trial")
    ax.set_ylabel(status.objectives[0])
    ax.legend(fontsize=11)
    hep.cms.label(data=False, ax=ax, loc=0, fontsize=14, rlabel="")
    return save(fig, plt, path)


# ------------------------------------------------------------------------------------------------ export


def export(folder: st.StudyFolder, number: int, out: Path, segment: str | None = None) -> Path:
    """Write trial `number` (of `segment`, needed when the study has several) as a plain train config."""
    doc = folder.read()
    if segment is None:
        if len(doc.segments) > 1:
            raise L1mlError(f"the study has segments ({', '.join(doc.segments)}): choose one", key="--segment")
        segment = doc.segments[0]
    if segment not in doc.segments:
        raise L1mlError(f"no such segment; the study has {', '.join(doc.segments)}", key="--segment", value=segment)
    trial_dir = folder.trial_dir(segment, number)
    source = trial_dir / tr.CONFIG
    if not source.is_file():
        raise L1mlError(f"no trial {number} in segment {segment} (see `l1ml search status {folder.root}`)", key="--trial",
                        value=number)
    _text, data = load_yaml(source)
    validate_config(data, TrainConfig, source=source)
    if segment == st.NO_SEGMENTS:
        data["data"]["events"] = doc.data_source  # the config's own data (config or file), not the study's copy of its path
    spec = tr.read_spec(trial_dir)
    header = (f"# trial {number} of search {doc.name}" + (f", segment {segment}" if segment != st.NO_SEGMENTS else "") +
              f" ({folder.root}); parameters: {json.dumps(spec.params)}\n")
    out = Path(out)
    if out.resolve() == source.resolve():
        raise L1mlError("the export would overwrite the trial's own config", path=out)
    write_atomic(out, header + yaml.safe_dump(data, sort_keys=False))
    return out
