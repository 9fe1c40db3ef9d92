"""`l1ml verify`: C-simulation of the generated firmware against the models, with a report."""

from __future__ import annotations

import sys

import click

from l1ml.cli.tracking import start_tracking, track_step, tracking_options

EXIT_VERIFY_FAILED = 4


@click.command()
@click.argument("target", type=click.Path(file_okay=False))
@click.option("--backend", help="Which converted project under TARGET/firmware/ [default: the only one].")
@click.option("--events", type=click.IntRange(min=1), help="Test events per sample [default: all of them].")
@click.option("--data", type=click.Path(dir_okay=False), help="Converted models only: inputs as an (events x features) .npy or an events .h5.")
@click.option("--random", "random_n", type=click.IntRange(min=1), help="Converted models only: N random inputs over the input type's range.")
@click.option("--min-events", type=click.IntRange(min=0), help="Fill the sample with random grid inputs up to this [default: verify.min_events].")
@click.option("--threads", type=click.IntRange(min=1), help="C-simulation and emulator threads [default: every core].")
@tracking_options
def verify(target: str, backend: str | None, events: int | None, data: str | None, random_n: int | None,
           min_events: int | None, threads: int | None, tracking_uri: str | None, no_tracking: bool) -> None:
    """Compile the firmware of TARGET (a training run, or a model converted with --out) with g++ and check it.

    Writes TARGET/verify/report.json and plots. Exit status 0 only if every check passed, 4 if a check failed.
    """
    from pathlib import Path

    from l1ml.cli.progress import Display
    from l1ml.verify.run import VerifyOptions
    from l1ml.verify.run import verify as run

    start_tracking(tracking_uri, no_tracking, target=target)
    options = VerifyOptions(backend=backend, events=events, data=Path(data) if data else None, random=random_n,
                            min_events=min_events, threads=threads)
    with Display() as display:
        report = run(target, options, log=display.log, progress=display.bar("C-simulation", "events").update)
        for line in report.summary_lines():
            display.log(line)
        for line in physics_lines(report):
            display.log(line)
        if report.plots:
            display.log(f"plots: {', '.join(str(p) for p in report.plots)}")
    track_step("verify", target, tracking_uri, no_tracking)
    click.echo(str(Path(target) / "verify" / "report.json"))
    if not report.passed:
        click.echo(f"verification FAILED: {', '.join(report.failed)}", err=True)
        sys.exit(EXIT_VERIFY_FAILED)


def physics_lines(report) -> list[str]:
    """The AUC and efficiencies the physics check compared, firmware against the float model, per signal."""
    check = next((c for c in report.checks if c.name.startswith("physics")), None)
    if check is None:
        return []
    signals = check.details["signals"]
    rates = list(next(iter(signals.values()))["efficiency"]) if signals else []
    lines = [f"physics compared (firmware / float model; tolerances: AUC {check.details['auc_tolerance']:g}, "
             f"efficiency {check.details['efficiency_tolerance']:g}):",
             f"  {'signal':<12}{'AUC':>16}" + "".join(f"{f'eff @ {r} kHz':>18}" for r in rates)]
    for name, entry in signals.items():
        effs = "".join(f"{_pair(entry['efficiency'][r]['firmware'], entry['efficiency'][r]['float']):>18}" for r in rates)
        lines.append(f"  {name:<12}{_pair(entry['auc_firmware'], entry['auc_float']):>16}{effs}")
    return lines


def _pair(firmware: float, reference: float) -> str:
    return f"{firmware:.3f} / {reference:.3f}"
