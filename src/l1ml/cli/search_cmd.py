"""`l1ml search`: hyperparameter searches whose trials are jobs (`l1ml search CONFIG`), and what to do with a study
(status, report, export)."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from l1ml.cli.tracking import start_tracking, track_step, tracking_options


class _SearchGroup(click.Group):
    """`l1ml search CONFIG ...` runs a search; `l1ml search status|report|export|trial ...` are sub-commands."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            close = difflib.get_close_matches(args[0], [n for n, c in self.commands.items() if not c.hidden], n=1)
            if close and not Path(args[0]).exists():
                raise click.UsageError(f"no such command or config file {args[0]!r} (did you mean '{close[0]}'?)", ctx)
            return "run", self.commands["run"], args
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage("l1ml search", "CONFIG [OPTIONS] | status|report|export STUDY ...")


@click.group(cls=_SearchGroup)
def search() -> None:
    """Search a model's hyperparameters, each trial a job: train, convert, estimate.

    \b
    l1ml search CONFIG [--backend local|slurm|condor] [--trials N] [--parallel K]
    l1ml search status STUDY [--json]
    l1ml search report STUDY [--mark RUN]...
    l1ml search export STUDY --trial N --out CONFIG.yaml

    CONFIG is a train config with a `search:` section (and optional `segments:`); STUDY is the folder
    `l1ml search` prints last (runs/search/<name>/). `l1ml search run --help` lists the options of a search.
    """


@search.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--backend", default="local", show_default=True, help="Where the trial jobs run: local, slurm or condor.")
@click.option("--trials", type=click.IntRange(min=1), help="Trials per study [default: search.budget.trials].")
@click.option("--parallel", type=click.IntRange(min=1), help="Trial jobs at once, over all segments [default: search.budget.parallel].")
@click.option("--name", help="The study folder's name [default: the config's name]; a new name starts a new study.")
@click.option("--storage", help="Optuna's database URL [default: SQLite in the study folder, which must be on a local disk].")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(file_okay=False), help="Root of run directories.")
@click.option("--poll", "poll_s", type=click.FloatRange(min=0.05),
              help="Seconds between looks at the jobs [default: 0.5 on the local queue, 10 on Slurm or HTCondor].")
@tracking_options
def run(config: str, backend: str, trials: int | None, parallel: int | None, name: str | None, storage: str | None,
        runs_root: str, poll_s: float | None, tracking_uri: str | None, no_tracking: bool) -> None:
    """Run the search of CONFIG (or continue it: the same command started again re-attaches to its running trials and
    never runs one twice). Prints each trial as it ends, the status table, and the study folder last."""
    from l1ml.documents import SearchStatus, read
    from l1ml.search.report import table
    from l1ml.search.steer import SearchOptions
    from l1ml.search.steer import search as run_search

    options = SearchOptions(backend=backend, trials=trials, parallel=parallel, runs_root=Path(runs_root), name=name,
                            storage=storage, poll_s=poll_s)
    start_tracking(tracking_uri, no_tracking, runs_root=runs_root)  # MLflow is made ready while the trials run
    folder = run_search(config, options, log=lambda m: click.echo(m, err=True))
    click.echo(table(read(folder / "status.json", SearchStatus)), err=True)
    track_step("search", folder, tracking_uri, no_tracking, runs_root=runs_root)
    click.echo(str(folder))


@search.command("trial", hidden=True)
@click.argument("trial_dir", type=click.Path(file_okay=False))
@click.option("--resume", is_flag=True, help="Continue the trial's training run from its last checkpoint.")
def trial(trial_dir: str, resume: bool) -> None:
    """Run one trial (what a trial job runs): train, convert, estimate; write TRIAL_DIR/result.json."""
    from l1ml.search.trial import run_trial

    run_trial(trial_dir, resume=resume)


def _study(path: str):
    from l1ml.search.study import StudyFolder

    folder = StudyFolder(Path(path).absolute())
    folder.read()
    return folder


@search.command()
@click.argument("study", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print status.json instead of the table.")
def status(study: str, as_json: bool) -> None:
    """The trials of STUDY: state, objectives, front (*), job, wall time, resumes, parameters."""
    from l1ml.search.report import table, write_status

    current = write_status(_study(study))
    click.echo(current.model_dump_json(indent=2) if as_json else table(current))


@search.command()
@click.argument("study", type=click.Path(file_okay=False))
@click.option("--mark", "marks", multiple=True, type=click.Path(file_okay=False),
              help="A training run to mark on the front (estimated with `l1ml estimate`), e.g. the current demo model.")
@tracking_options
def report(study: str, marks: tuple[str, ...], tracking_uri: str | None, no_tracking: bool) -> None:
    """Write STUDY/report/: the Pareto front (front.png, front.csv) and Optuna's parameter importances; print the
    front's table. The study and each trial are logged to MLflow (the trials as nested runs)."""
    from l1ml.documents import SearchStatus, read
    from l1ml.search.report import report as make_report
    from l1ml.search.report import table

    folder = _study(study)
    runs_root = folder.root.parent.parent
    start_tracking(tracking_uri, no_tracking, runs_root=runs_root)
    made = make_report(folder, [Path(m) for m in marks], log=lambda m: click.echo(m, err=True))
    current = read(folder.status_json, SearchStatus)
    click.echo("Pareto front:" if len(current.objectives) > 1 else "best trials:")
    click.echo(table(current, front_only=True))
    track_step("search", folder.root, tracking_uri, no_tracking, runs_root=runs_root)
    for path in made:
        click.echo(str(path))


@search.command()
@click.argument("study", type=click.Path(file_okay=False))
@click.option("--trial", "number", required=True, type=click.IntRange(min=0), help="The trial's number (see `status`).")
@click.option("--segment", help="The trial's segment (studies with segments).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The train config to write.")
def export(study: str, number: int, segment: str | None, out: str) -> None:
    """Write trial N of STUDY as a plain train config, for `l1ml train` -> convert -> verify -> deliver."""
    from l1ml.search.report import export as run_export

    click.echo(str(run_export(_study(study), number, Path(out), segment)))
