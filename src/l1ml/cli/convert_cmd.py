"""`l1ml convert`: HLS firmware projects from training runs."""

from __future__ import annotations

import click


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--target", help="FPGA target (name from `l1ml hw list` or YAML path) [default: the run's firmware.target].")
@click.option("--backend", type=click.Choice(["vitis", "vivado"]), help="hls4ml backend [default: the run's firmware.backend].")
@click.option("--reuse-factor", type=click.IntRange(min=1), help="hls4ml ReuseFactor [default: the run's firmware.reuse_factor].")
def convert(run_dir: str, target: str | None, backend: str | None, reuse_factor: int | None) -> None:
    """Write the hls4ml project of the quantised network of RUN_DIR under RUN_DIR/firmware/<backend>/.

    The last line printed is the project folder.
    """
    from l1ml.firmware.convert import convert_run

    result = convert_run(run_dir, target=target, backend=backend, reuse_factor=reuse_factor)
    click.echo(str(result.out_dir))
