"""`l1ml retrain`: a challenger trained on new data against the champion, decided by the config's promotion rule."""

from __future__ import annotations

import sys

import click

from l1ml.cli.tracking import tracking_options


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--data", "data", type=click.Path(dir_okay=False),
              help="The new events: an events file (.h5) or a data config (.yaml, generated or reused from its cache).")
@click.option("--challenger", type=click.Path(file_okay=False),
              help="Instead of --data: an already trained challenger run (e.g. once its synthesis has finished).")
@click.option("--champion", help="The model to beat: NAME@ALIAS (e.g. ae_demo@production), NAME@VERSION, or a training "
              "run folder [default: none: the challenger is judged on verify and budget alone].")
@click.option("--promote", is_flag=True, help="If the outcome is `promote`: deliver the challenger (next version), register "
              "it and move the champion's alias (default: production) to it.")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(file_okay=False), help="Root of run directories.")
@click.option("--deliveries", default="deliveries", show_default=True, type=click.Path(file_okay=False),
              help="Root of the deliveries (--promote).")
@tracking_options
def retrain(config: str, data: str | None, challenger: str | None, champion: str | None, promote: bool, runs_root: str,
            deliveries: str, tracking_uri: str | None, no_tracking: bool) -> None:
    """Train a challenger with CONFIG on new data, convert, verify and estimate it, score it and the champion by their
    firmware on the same new test events, and decide by CONFIG's `promotion` rule.

    Writes <challenger run>/retrain/ (comparison.json, comparison.txt, plots) and prints the comparison, then the
    outcome line last.

    \b
    Exit status: 0 promote, 3 keep champion, 4 refused (verify failed, or over budget),
    1 usage or input error.
    """
    from pathlib import Path

    from l1ml.retrain.run import RetrainOptions
    from l1ml.retrain.run import retrain as run

    options = RetrainOptions(data=data, challenger=challenger, champion=champion, promote=promote, runs_root=Path(runs_root),
                             deliveries=Path(deliveries), tracking_uri=tracking_uri, tracking=not no_tracking)
    result = run(config, options, log=lambda message: click.echo(message, err=True))
    for line in result.table:
        click.echo(line)
    click.echo(result.comparison.decision.line)
    sys.exit(result.exit_code)
