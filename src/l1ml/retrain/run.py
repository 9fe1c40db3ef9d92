"""`l1ml retrain CONFIG --data NEW`: train a challenger on new events, convert, verify and estimate it, score it and the
champion by their firmware on the same new test events, and decide by CONFIG's promotion rule.

Writes `<challenger run>/retrain/`: comparison.json (`RetrainComparison`), comparison.txt (the table the command
prints), roc_<signal>.png and efficiency.png; and logs the challenger's steps and the comparison to MLflow (the
comparison as a nested run `retrain` of the challenger's run). With `--promote` and the outcome `promote`: delivers the
challenger (`deliver --version next`), registers the delivery and sets the champion's alias to it.

The test events are the challenger's test split of the new events: the champion never saw any of the new events, and
the challenger did not train on these. Each model's thresholds are set on its own scores of that background.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from l1ml.config.loader import load_config, load_yaml, resolve_path, validate_config
from l1ml.config.train import Promotion, TrainConfig
from l1ml.errors import L1mlError
from l1ml.retrain import compare
from l1ml.retrain.budget import estimate_gate, no_budget, synthesis_gate
from l1ml.retrain.champion import DEFAULT_ALIAS, Champion, find_champion
from l1ml.retrain.document import COMPARISON, OUT_DIR, TABLE, Gate, RetrainComparison
from l1ml.retrain.plots import overlays
from l1ml.retrain.rule import decide
from l1ml.retrain.scoring import firmware_scorer
from l1ml.retrain.table import lines
from l1ml.runfolder import read_inputs, require_trained
from l1ml.track.store import OUTBOX, resolve_uri, runs_root_of, tracking_off

Log = Callable[[str], None]
EXIT_CODES = {"promote": 0, "keep champion": 3, "refused": 4}
DATA_SUFFIXES = (".h5", ".hdf5", ".yaml", ".yml")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class RetrainOptions:
    data: str | Path | None = None  # the new events (.h5) or a data config: a new challenger is trained on them
    challenger: str | Path | None = None  # or an already trained challenger run (e.g. once its synthesis finished)
    champion: str | None = None  # NAME@ALIAS|VERSION in the registry, or a run folder; None: no champion
    promote: bool = False
    runs_root: Path = Path("runs")
    deliveries: Path = Path("deliveries")
    tracking_uri: str | None = None
    tracking: bool = True  # False: --no-tracking (a registered champion is still read from the registry)
    synth_db: object | None = None  # the synthesis job database (budget: synthesis); default JobDB()


@dataclass
class RetrainOutcome:
    run_dir: Path
    comparison: RetrainComparison
    path: Path  # comparison.json
    table: list[str]
    plots: list[Path] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.comparison.decision.outcome

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


def retrain(config_path: str | Path, options: RetrainOptions, log: Log = _stderr) -> RetrainOutcome:
    """The whole flow; raises L1mlError for a user mistake before any training where it can tell."""
    start = time.perf_counter()
    seconds: dict[str, float] = {}
    _, cfg = load_config(config_path, TrainConfig)
    if cfg.promotion is None:
        raise L1mlError("no promotion section: `l1ml retrain` decides by the config's promotion rule (see configs/train/*_demo.yaml)",
                        path=config_path, key="promotion")
    _check_sources(options)
    tracking = options.tracking and not tracking_off()
    if options.promote and not tracking:
        raise L1mlError("--promote registers the new version in the MLflow registry: it needs tracking (drop --no-tracking, "
                        "unset L1ML_NO_TRACKING)", key="--promote")
    uri = resolve_uri(options.tracking_uri, options.runs_root)
    champion = find_champion(options.champion, uri) if options.champion else None
    if champion:
        log(f"champion: {champion.run_dir}" if champion.model_version is None else f"champion: {champion.spec} ({champion.run_dir})")

    stage = time.perf_counter()
    if options.data is not None:
        run_dir = _train_challenger(config_path, options.data, options.runs_root, log)
    else:
        run_dir = Path(options.challenger).resolve()
        require_trained(run_dir, "retrain")
    seconds["train"] = time.perf_counter() - stage
    _, run_cfg = load_config(run_dir / "config.yaml", TrainConfig)
    rule = _rule_for(run_cfg, cfg.promotion, config_path)

    verify_gate, budget_gate = _check_challenger(run_dir, rule, converted=options.challenger is not None, seconds=seconds,
                                                 log=log, synth_db=options.synth_db)
    stage = time.perf_counter()
    comparison, scores = _compare(run_dir, run_cfg, rule, champion, verify_gate, budget_gate, log)
    seconds["compare"] = time.perf_counter() - stage
    out = run_dir / OUT_DIR
    stage = time.perf_counter()
    results = {r.role: r for r in (comparison.champion, comparison.challenger) if r is not None}
    made = overlays(scores, results, run_cfg.evaluation.bx_rate_khz, rule.rate_khz, out)
    seconds["plots"] = time.perf_counter() - stage
    comparison.seconds = {k: round(v, 2) for k, v in seconds.items()}
    path = _write(comparison, out)
    log(f"comparison: {path}")

    package = None
    if options.promote and comparison.decision.outcome == "promote":
        package = _promote(run_dir, comparison, champion, rule, options, uri, path, log)
    comparison.seconds["total"] = round(time.perf_counter() - start, 2)
    path = _write(comparison, out)
    if tracking:
        _track(run_dir, comparison, path, uri, log, package=package)
    return RetrainOutcome(run_dir, comparison, path, lines(comparison), made)


def _check_sources(options: RetrainOptions) -> None:
    if (options.data is None) == (options.challenger is None):
        raise L1mlError("give the new events with --data EVENTS.h5|DATA_CONFIG (a challenger is trained on them), or an already "
                        "trained challenger with --challenger RUN_DIR", key="--data")
    if options.data is not None:
        data = Path(options.data)
        if not data.is_file():
            raise L1mlError("no such events file or data config", key="--data", value=str(data))
        if data.suffix not in DATA_SUFFIXES:
            raise L1mlError("an events file (.h5) or a data config (.yaml)", key="--data", value=str(data))


def _rule_for(run_cfg: TrainConfig, rule: Promotion, config_path: str | Path) -> Promotion:
    """CONFIG's rule, checked against the challenger's config (its rates and signals: the same unless --challenger)."""
    data = {**run_cfg.model_dump(mode="json"), "promotion": rule.model_dump(mode="json")}
    return validate_config(data, TrainConfig, source=config_path).promotion  # type: ignore[return-value]


def challenger_config(config_path: str | Path, data: str | Path, runs_root: Path) -> Path:
    """CONFIG with `data.events` = the new data, written (content-addressed) under <runs>/retrain/configs/: the
    challenger's training reads it, and its run keeps a copy as config.yaml. Paths become absolute."""
    _, raw = load_yaml(config_path)
    raw["data"]["events"] = str(Path(data).resolve())
    target = (raw.get("firmware") or {}).get("target")
    if isinstance(target, str) and Path(target).suffix:  # a target given as a YAML path, relative to CONFIG
        raw["firmware"]["target"] = str(resolve_path(config_path, target))
    text = (f"# made by `l1ml retrain` from {Path(config_path).resolve()} with data.events replaced by --data {data}\n"
            + yaml.safe_dump(raw, sort_keys=False))
    folder = Path(runs_root) / "retrain" / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{raw['name']}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    path.write_text(text)
    return path


def _train_challenger(config_path: str | Path, data: str | Path, runs_root: Path, log: Log) -> Path:
    from l1ml.train.run import train

    derived = challenger_config(config_path, data, runs_root)
    log(f"training the challenger on {data} ({derived})")
    outcome = train(derived, runs_root=runs_root, log=log)
    log(f"challenger: {outcome.run_dir} (trained in {outcome.seconds:.1f} s)")
    return outcome.run_dir.resolve()


def _check_challenger(run_dir: Path, rule: Promotion, *, converted: bool, seconds: dict, log: Log,
                      synth_db=None) -> tuple[Gate, Gate]:
    """Convert (unless an already converted --challenger), verify and estimate the challenger."""
    from l1ml.firmware.convert import convert_run
    from l1ml.firmware.project import projects_in
    from l1ml.verify.run import VerifyOptions, verify

    stage = time.perf_counter()
    if not (converted and projects_in(run_dir)):
        log("converting the challenger")
        convert_run(run_dir)
    seconds["convert"] = time.perf_counter() - stage
    stage = time.perf_counter()
    report = verify(run_dir, VerifyOptions(), log=log)
    seconds["verify"] = time.perf_counter() - stage
    checks = len(report.checks)
    summary = f"all {checks} checks passed" if report.passed else f"failed: {', '.join(report.failed) or 'no checks'}"
    log(f"verify: {summary}")
    verify_gate = Gate(ok=report.passed, summary=summary,
                       details={"report": str(run_dir / "verify" / "report.json"), "failed_checks": report.failed})
    stage = time.perf_counter()
    if rule.budget == "estimate":
        budget_gate = estimate_gate(run_dir, rule, log=log)
    elif rule.budget == "synthesis":
        budget_gate = synthesis_gate(run_dir, synth_db)
    else:
        budget_gate = no_budget()
    seconds["budget"] = time.perf_counter() - stage
    log(f"budget ({rule.budget}): {budget_gate.summary}")
    return verify_gate, budget_gate


def _compare(run_dir: Path, run_cfg: TrainConfig, rule: Promotion, champion: Champion | None, verify_gate: Gate,
             budget_gate: Gate, log: Log):
    from l1ml.data.training import load_run

    data = load_run(run_dir, run_cfg)
    test = {compare.BACKGROUND: data.background.test, **{name: s.test for name, s in data.signals.items()}}
    ev = run_cfg.evaluation
    scorers = {"challenger": (firmware_scorer(run_dir), str(run_dir), None)}
    if champion is not None:
        scorers["champion"] = (firmware_scorer(champion.run_dir), champion.spec, champion.model_version)
    scores, results = {}, {}
    for role, (scorer, spec, version) in scorers.items():
        log(f"scoring the {role}: {scorer.source}")
        scores[role] = compare.score_all(scorer, test)
        results[role] = compare.evaluate(scorer, scores[role], ev.rates_khz, ev.bx_rate_khz, role=role, spec=spec,
                                         model_version=version)
    challenger = results["challenger"]
    decision = decide(rule, run_cfg.data.signals, compare.at_rate(challenger, rule.rate_khz),
                      compare.at_rate(results["champion"], rule.rate_khz) if champion else None, verify_gate, budget_gate)
    inputs = read_inputs(run_dir)
    comparison = RetrainComparison(
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), model=run_cfg.name,
        rule=rule.model_dump(mode="json"), rate_khz=rule.rate_khz, rates_khz=ev.rates_khz, bx_rate_khz=ev.bx_rate_khz,
        events={"path": inputs.events.path, "sha256": inputs.events.sha256,
                "data_config": inputs.data_config.path if inputs.data_config else None,
                "test_split": f"the challenger's test split (fractions {run_cfg.data.split}, seed {run_cfg.seed})",
                "n_test": {name: len(x) for name, x in test.items()}},
        challenger=challenger, champion=results.get("champion"), verify=verify_gate, budget=budget_gate, decision=decision)
    return comparison, scores


def _write(comparison: RetrainComparison, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / TABLE).write_text("\n".join([*lines(comparison), "", comparison.decision.line]) + "\n")
    return comparison.write(out / COMPARISON)


# ------------------------------------------------------------------------------------------------ --promote


def _promote(run_dir: Path, comparison: RetrainComparison, champion: Champion | None, rule: Promotion,
             options: RetrainOptions, uri: str, path: Path, log: Log) -> Path:
    """Deliver the challenger as the model's next version, register it and move the alias to it."""
    from l1ml.deliver.package import DeliverOptions, deliver

    synthesis = rule.budget == "synthesis"
    log(f"promoting: delivering {run_dir} ({'with its synthesis' if synthesis else 'no synthesis'})")
    delivery = deliver(run_dir, DeliverOptions("next", Path(options.deliveries), synthesis=synthesis), log=log,
                       db=options.synth_db)
    alias = (champion.alias if champion and champion.alias else None) or DEFAULT_ALIAS
    promotion = {"delivery": str(delivery.path.resolve()), "version": delivery.manifest.version, "alias": alias}
    comparison.promotion = promotion
    deliver_run_id = _track(run_dir, comparison, path, uri, log, package=delivery.path, steps_only=True)
    from l1ml.track import registry
    from l1ml.track.store import client

    c = client(uri)
    try:
        version = registry.register_delivery(c, delivery.path, deliver_run_id)
        note = f"l1ml retrain: {comparison.decision.line.removeprefix('outcome: ')}; comparison {path}"
        registry.promote(c, comparison.model, version.version, alias=alias, note=note)
    except L1mlError:
        raise
    except Exception as exc:  # the registry is the point of --promote: its failure is the command's
        raise L1mlError(f"delivered {delivery.path} but could not register or promote it in {uri} "
                        f"({type(exc).__name__}: {exc}); the comparison is {path}", key="--promote") from None
    promotion["model_version"] = str(version.version)
    log(f"promoted: {comparison.model} version {version.version} (delivery {delivery.manifest.version}) is now @{alias}")
    return delivery.path


# ------------------------------------------------------------------------------------------------ tracking


def _track(run_dir: Path, comparison: RetrainComparison, path: Path, uri: str, log: Log, *, package: Path | None = None,
           steps_only: bool = False) -> str | None:
    """Log the challenger's steps (train, convert, verify, estimate, deliver) and, unless `steps_only`, the comparison as
    the nested run `retrain`; never raises. Returns the MLflow run id of the delivery's record, if one was logged."""
    from l1ml.track.log import track

    built: list = []

    def build() -> list:
        from l1ml.track import records

        found = [r for step, there in (("train", True), ("convert", any((run_dir / "firmware").glob("*/convert.json"))),
                                       ("verify", (run_dir / "verify" / "report.json").is_file()),
                                       ("estimate", (run_dir / "estimate" / "estimate.json").is_file()))
                 if there for r in records.for_step(step, run_dir)]
        if package is not None:
            found += records.for_step("deliver", package)
        if not steps_only:
            found.append(retrain_record(run_dir, comparison, path, records.run_record(run_dir)))
        built.extend(found)
        return found

    ids = track(build, uri, outbox=runs_root_of(run_dir) / OUTBOX, warn=log)
    if not ids:
        return None
    return next((i for r, i in zip(built, ids) if r.tags.get("l1ml.step") == "deliver"), None)


def retrain_record(run_dir: Path, comparison: RetrainComparison, path: Path, parent):
    """The MLflow record of a comparison: a nested run `retrain` of the challenger's run."""
    from l1ml.track.log import Record

    run_dir = Path(run_dir).resolve()
    run = f"{run_dir.parent.name}/{run_dir.name}"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    rate = f"{comparison.rate_khz:g}"
    metrics: list[tuple[str, float, int]] = []
    for result in (comparison.champion, comparison.challenger):
        if result is None:
            continue
        for name, s in result.signals.items():
            metrics += [(f"{result.role}/auc/{name}", s.auc.value, 0), (f"{result.role}/auc_err/{name}", s.auc.error, 0)]
            for r, e in s.efficiency.items():
                metrics += [(f"{result.role}/eff_{r}kHz/{name}", e.value, 0), (f"{result.role}/eff_err_{r}kHz/{name}", e.error, 0)]
        metrics += [(f"{result.role}/threshold_{t.rate_khz:g}kHz", t.threshold, 0) for t in result.thresholds]
    for name, v in comparison.decision.signals.items():
        metrics += [(f"diff_{rate}kHz/{name}", v.difference, 0), (f"sigma_{rate}kHz/{name}", v.sigma, 0)]
    metrics.append(("promote", float(comparison.decision.outcome == "promote"), 0))
    params = {f"promotion.{k}": str(v) for k, v in comparison.rule.items()}
    params["champion"] = comparison.champion.spec if comparison.champion else "none"
    tags = {"l1ml.step": "retrain", "l1ml.run": run, "l1ml.run_dir": str(run_dir), "l1ml.model": comparison.model,
            "l1ml.retrain.outcome": comparison.decision.outcome, "l1ml.retrain.reason": comparison.decision.reason[:5000]}
    if comparison.champion is not None:
        tags["l1ml.retrain.champion"] = comparison.champion.spec
        tags["l1ml.retrain.champion_run_dir"] = comparison.champion.run_dir
    if comparison.promotion:
        tags.update({f"l1ml.retrain.promoted_{k}": str(v) for k, v in comparison.promotion.items()})
    return Record(experiment=run_dir.parent.name, key=f"retrain:{run}:{digest}", name="retrain", params=params,
                  metrics=metrics, tags=tags, artifacts=[(path.parent, "retrain")], parent=parent)
