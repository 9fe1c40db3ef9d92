"""`l1ml train`: quantisation-aware training with thresholds set by trigger rate."""

from __future__ import annotations

import click

from l1ml.cli.tracking import runs_root_of_run, start_tracking, track_step, tracking_options


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--resume", "resume", type=click.Path(file_okay=False), help="Continue an interrupted run from its last checkpoint.")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(file_okay=False), help="Root of run directories.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@tracking_options
def train(config: str, resume: str | None, runs_root: str, quiet: bool, tracking_uri: str | None, no_tracking: bool) -> None:
    """Train the model of CONFIG (autoencoder, VAE encoder or BDT), float and quantised, and set thresholds.

    The last line printed is the run directory.
    """
    from l1ml.cli.progress import Display
    from l1ml.train.run import train as run

    root = runs_root_of_run(resume) if resume else runs_root
    start_tracking(tracking_uri, no_tracking, runs_root=root)
    with Display(quiet) as display:
        result = run(config, resume=resume, runs_root=runs_root, log=display.log,
                     progress=_epoch_bars(display) if display.live else None)
        _summary(display.log, result.metrics, result.seconds)
        display.log(f"plots: {', '.join(str(p) for p in result.plots)}")
    track_step("train", result.run_dir, tracking_uri, no_tracking, runs_root=root)
    click.echo(str(result.run_dir))


def _epoch_bars(display):
    """A progress bar per phase of training (float, quantized), with the latest losses beside it."""
    bars = {}

    def show(phase: str, epoch: int, epochs: int, logs: dict, _seconds_per_epoch: float) -> None:
        if phase not in bars:
            bars[phase] = display.bar(f"[{phase}]", "epochs")
        bars[phase].update(epoch, epochs, "  ".join(f"{k} {v:.4g}" for k, v in logs.items()))

    return show


def _summary(echo, metrics: dict, seconds: float) -> None:
    echo(f"trained in {seconds:.1f} s; {metrics['n_background_test']} test background events")
    rates = [row["rate_khz"] for row in metrics["thresholds"]["float"]]
    echo(f"{'signal':<12}{'':>10}{'AUC':>8}" + "".join(f"{f'eff@{r:g}kHz':>14}" for r in rates))
    for name, entry in metrics["signals"].items():
        for flavour in ("float", "quantized"):
            m = entry[flavour]
            effs = "".join(f"{m['efficiency'][f'{r:g}']['value']:>14.3f}" for r in rates)
            echo(f"{name if flavour == 'float' else '':<12}{flavour:>10}{m['auc']:>8.3f}{effs}")
