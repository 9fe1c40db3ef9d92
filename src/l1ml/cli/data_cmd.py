"""`l1ml data`: generate and inspect L1 event samples."""

from __future__ import annotations

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
    from l1ml.cli.progress import Display
    from l1ml.data.generate import generate as run

    with Display(quiet) as display:
        bar = display.bar("generating", "events")
        result = run(config, out=out, jobs=jobs, force=force, progress=lambda done, total, _seconds: bar.update(done, total))
        if result.reused:
            display.log(f"unchanged config: reusing {result.path}")
        else:
            rate = sum(result.events.values()) / max(result.seconds, 1e-9)
            counts = ", ".join(f"{k} {v}" for k, v in result.events.items())
            display.log(f"generated {counts} in {result.seconds:.1f} s ({rate:.0f} events/s)")
        display.log(f"manifest: {result.manifest}")
    click.echo(str(result.path))


@data.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write summary.txt, summary.json, the pT/eta/phi and multiplicity plots and a manifest into this folder "
                   "[default: print the summary only].")
@click.option("--sample", help="Only this sample of the file.")
@click.option("--clip", is_flag=True, help="Clip negative pT, |eta| and phi out of range instead of failing (counts reported).")
def inspect(file: str, out_dir: str | None, sample: str | None, clip: bool) -> None:
    """Summarise an event FILE (ADC2021 or generated): counts, process mix, multiplicities, pT and eta.

    Writes nothing unless --out is given; then the last line printed is that folder.
    """
    from l1ml.data.inspect import inspect_file

    result = inspect_file(file, out_dir=out_dir, sample=sample, clip=clip)
    click.echo(result.summary)
    if result.out_dir is None:
        click.echo("give --out DIR for the plots and summary files", err=True)
        return
    click.echo(f"plots: {', '.join(str(p) for p in result.plots)}", err=True)
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
