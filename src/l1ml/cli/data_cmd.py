"""`l1ml data`: generate and inspect L1 event samples."""

from __future__ import annotations

import sys
import time

import click


@click.group()
def data() -> None:
    """L1 event samples in the ADC2021 layout."""


@data.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Output HDF5 file [default: runs/data/NAME/HASH/events.h5].")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes [default: all cores].")
@click.option("--force", is_flag=True, help="Generate again even if an identical config's file exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def generate(config: str, out: str | None, jobs: int | None, force: bool, quiet: bool) -> None:
    """Generate the samples of CONFIG with Pythia 8 and emulate their L1 objects.

    The same config and seed give byte-identical events, whatever the number of jobs. The last line
    printed is the output file.
    """
    from l1ml.data.generate import generate as run

    result = run(config, out=out, jobs=jobs, force=force, progress=None if quiet else _progress())
    if not quiet:
        if result.reused:
            click.echo(f"unchanged config: reusing {result.path}", err=True)
        else:
            sys.stderr.write("\n")  # end the progress line
            rate = sum(result.events.values()) / max(result.seconds, 1e-9)
            counts = ", ".join(f"{k} {v}" for k, v in result.events.items())
            click.echo(f"generated {counts} in {result.seconds:.1f} s ({rate:.0f} events/s)", err=True)
        click.echo(f"manifest: {result.manifest}", err=True)
    click.echo(str(result.path))


def _progress():
    last = [0.0]

    def show(done: int, total: int, seconds: float) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        rate = done / max(seconds, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("inf")
        sys.stderr.write(f"\r  {done}/{total} events ({done / total:.0%}), {rate:.0f} events/s, ETA {eta:.0f} s   ")
        sys.stderr.flush()

    return show


@data.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder [default: inspect-STEM beside FILE].")
@click.option("--sample", help="Only this sample of the file.")
@click.option("--clip", is_flag=True, help="Clip negative pT, |eta| and phi out of range instead of failing (counts reported).")
def inspect(file: str, out_dir: str | None, sample: str | None, clip: bool) -> None:
    """Summarise an event FILE (ADC2021 or generated): counts, multiplicities, pT/eta/phi plots."""
    from l1ml.data.inspect import inspect_file

    result = inspect_file(file, out_dir=out_dir, sample=sample, clip=clip)
    click.echo(result.summary)
    click.echo(f"plots: {', '.join(p.name for p in result.plots)}", err=True)
    click.echo(str(result.out_dir))


@data.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--sample", help="The sample to export (needed when FILE holds several).")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Output HDF5 file.")
def export(file: str, sample: str | None, out: str) -> None:
    """Write one sample of FILE as a plain ADC2021 file (`Particles` at the top level), for code that reads those."""
    from l1ml.data.events import export_sample

    s = export_sample(file, sample, out)
    click.echo(f"exported {len(s)} events of sample {s.name}", err=True)
    click.echo(out)


@data.command()
def processes() -> None:
    """List the Pythia 8 processes a data config can name."""
    from l1ml.data.processes import PROCESSES

    for name, (description, settings) in PROCESSES.items():
        click.echo(f"{name:<11} {description}")
        for line in settings:
            click.echo(f"{'':<13}{line}")
