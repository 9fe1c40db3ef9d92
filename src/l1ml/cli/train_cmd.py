"""`l1ml train`: quantisation-aware training with thresholds set by trigger rate."""

from __future__ import annotations

import click


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--resume", "resume", type=click.Path(file_okay=False), help="Continue an interrupted run from its last checkpoint.")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(file_okay=False), help="Root of run directories.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def train(config: str, resume: str | None, runs_root: str, quiet: bool) -> None:
    """Train the model of CONFIG (autoencoder, VAE encoder or BDT), float and quantised, and set thresholds.

    The last line printed is the run directory.
    """
    from l1ml.train.run import train as run

    result = run(config, resume=resume, runs_root=runs_root, log=None if quiet else _echo)
    if not quiet:
        _summary(result.metrics, result.seconds)
    click.echo(str(result.run_dir))


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _summary(metrics: dict, seconds: float) -> None:
    _echo(f"trained in {seconds:.1f} s; {metrics['n_background_test']} test background events")
    rates = [row["rate_khz"] for row in metrics["thresholds"]["float"]]
    head = f"{'signal':<12}{'':>10}{'AUC':>8}" + "".join(f"{f'eff@{r:g}kHz':>14}" for r in rates)
    _echo(head)
    for name, entry in metrics["signals"].items():
        for flavour in ("float", "quantized"):
            m = entry[flavour]
            effs = "".join(f"{m['efficiency'][f'{r:g}']['value']:>14.3f}" for r in rates)
            _echo(f"{name if flavour == 'float' else '':<12}{flavour:>10}{m['auc']:>8.3f}{effs}")
