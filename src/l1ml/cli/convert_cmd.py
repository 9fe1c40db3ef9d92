"""`l1ml convert`: HLS firmware projects from training runs, or from models trained elsewhere (--keras)."""

from __future__ import annotations

import click


@click.command()
@click.argument("run_dir", required=False, type=click.Path(file_okay=False))
@click.option("--target", help="FPGA target (name from `l1ml hw list` or YAML path) [default: the run's firmware.target, else vu13p].")
@click.option("--backend", type=click.Choice(["vitis", "vivado"]), help="hls4ml backend [default: the run's firmware.backend, else vitis].")
@click.option("--reuse-factor", type=click.IntRange(min=1), help="hls4ml ReuseFactor [default: the run's firmware.reuse_factor, else 1].")
@click.option("--keras", "keras", type=click.Path(dir_okay=False), help="Your own model: Keras/QKeras JSON (with --weights) or a full .h5.")
@click.option("--weights", type=click.Path(dir_okay=False), help="HDF5 weights for --keras ARCH.json.")
@click.option("--input-type", help="Firmware input type for --keras models without an input quantiser [default: ap_fixed<16,6,AP_RND_CONV,AP_SAT>].")
@click.option("--clock", "clock_ns", type=click.FloatRange(min=0, min_open=True), help="Clock period in ns for --keras [default: the target's].")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder for --keras (required with it).")
def convert(run_dir: str | None, target: str | None, backend: str | None, reuse_factor: int | None, keras: str | None,
            weights: str | None, input_type: str | None, clock_ns: float | None, out: str | None) -> None:
    """Write the HLS project of the quantised network of RUN_DIR under RUN_DIR/firmware/<backend>/,
    or of a model trained elsewhere (--keras ... --out DIR) under DIR/firmware/<backend>/.

    The last line printed is the project folder; `l1ml verify RUN_DIR` (or DIR) checks it.
    """
    from pathlib import Path

    if keras:
        from l1ml.firmware.byo import convert_keras

        if run_dir or not out:
            raise click.UsageError("--keras takes no RUN_DIR and needs --out DIR")
        folder = convert_keras(Path(keras), Path(weights) if weights else None, Path(out), input_type=input_type,
                               target=target or "vu13p", backend=backend or "vitis", reuse_factor=reuse_factor or 1,
                               clock_period_ns=clock_ns)
        click.echo(str(folder))
        return
    if not run_dir:
        raise click.UsageError("give a training run folder, or a model with --keras ARCH.json --weights W.h5 --out DIR")
    if weights or out or input_type or clock_ns:
        raise click.UsageError("--weights, --input-type, --clock and --out go with --keras")
    from l1ml.firmware.convert import convert_run

    result = convert_run(run_dir, target=target, backend=backend, reuse_factor=reuse_factor)
    click.echo(str(result.out_dir))
