"""`l1ml verify`: C-simulation of the generated firmware against the models, with a report."""

from __future__ import annotations

import sys

import click

EXIT_VERIFY_FAILED = 4


@click.command()
@click.argument("target", type=click.Path(file_okay=False))
@click.option("--backend", help="Which converted project under TARGET/firmware/ [default: the only one].")
@click.option("--events", type=click.IntRange(min=1), help="Test events per sample [default: all of them].")
@click.option("--data", type=click.Path(dir_okay=False), help="Converted models only: inputs as an (events x features) .npy or an events .h5.")
@click.option("--random", "random_n", type=click.IntRange(min=1), help="Converted models only: N random inputs over the input type's range.")
@click.option("--min-events", type=click.IntRange(min=0), help="Fill the sample with random grid inputs up to this [default: verify.min_events].")
@click.option("--threads", type=click.IntRange(min=1), help="C-simulation and emulator threads [default: every core].")
def verify(target: str, backend: str | None, events: int | None, data: str | None, random_n: int | None,
           min_events: int | None, threads: int | None) -> None:
    """Compile the firmware of TARGET (a training run, or a model converted with --out) with g++ and check it.

    Writes TARGET/verify/report.json and plots. Exit status 0 only if every check passed, 4 if a check failed.
    """
    from pathlib import Path

    from l1ml.verify.run import VerifyOptions
    from l1ml.verify.run import verify as run

    options = VerifyOptions(backend=backend, events=events, data=Path(data) if data else None, random=random_n,
                            min_events=min_events, threads=threads)
    report = run(target, options, log=lambda m: click.echo(m, err=True))
    for line in report.summary_lines():
        click.echo(line, err=True)
    click.echo(str(Path(target) / "verify" / "report.json"))
    if not report.passed:
        click.echo(f"verification FAILED: {', '.join(report.failed)}", err=True)
        sys.exit(EXIT_VERIFY_FAILED)
