"""`l1ml convert`: firmware projects from training runs, or from models trained elsewhere (--keras, --xgboost, --conifer)."""

from __future__ import annotations

import click

from l1ml.cli.tracking import start_tracking, track_step, tracking_options

BACKENDS = ["vitis", "vivado", "xilinxhls", "vhdl"]


@click.command()
@click.argument("run_dir", required=False, type=click.Path(file_okay=False))
@click.option("--target", help="FPGA target (name from `l1ml hw list` or YAML path) [default: the run's firmware.target, else vu13p].")
@click.option("--backend", type=click.Choice(BACKENDS),
              help="networks: hls4ml's vitis (default) or vivado; BDTs: conifer's xilinxhls or vhdl [default: both].")
@click.option("--reuse-factor", type=click.IntRange(min=1), help="hls4ml ReuseFactor [default: the run's firmware.reuse_factor, else 1].")
@click.option("--keras", "keras", type=click.Path(),
              help="Your own network: Keras/QKeras JSON (with --weights), a full-model .h5, or a SavedModel folder.")
@click.option("--weights", type=click.Path(dir_okay=False), help="HDF5 weights for --keras ARCH.json.")
@click.option("--xgboost", "xgboost_model", type=click.Path(dir_okay=False), help="Your own BDT: an xgboost model (save_model JSON/UBJ).")
@click.option("--conifer", "conifer_model", type=click.Path(dir_okay=False), help="Your own BDT: a conifer model JSON (its precisions are used).")
@click.option("--input-type", help="Firmware input type of your own model [default: the model's own, else ap_fixed<16,6,AP_RND_CONV,AP_SAT>].")
@click.option("--score-type", help="BDT score type [default: --conifer: the model's own; --xgboost: 18 bits, enough integer bits].")
@click.option("--clock", "clock_ns", type=click.FloatRange(min=0, min_open=True), help="Clock period (ns), own models [default: the target's].")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder for your own model (required with it).")
@click.option("--rtl", is_flag=True, help="Networks: also write firmware/rtl/, da4ml's Verilog and VHDL of the same arithmetic "
              "(verified with Verilator by `l1ml verify`).")
@tracking_options
def convert(run_dir: str | None, target: str | None, backend: str | None, reuse_factor: int | None, keras: str | None,
            weights: str | None, xgboost_model: str | None, conifer_model: str | None, input_type: str | None,
            score_type: str | None, clock_ns: float | None, out: str | None, rtl: bool, tracking_uri: str | None,
            no_tracking: bool) -> None:
    """Write the firmware project of RUN_DIR under RUN_DIR/firmware/<backend>/ (hls4ml for networks, conifer for BDTs),
    or of a model trained elsewhere (--keras, --xgboost or --conifer, with --out DIR) under DIR/firmware/<backend>/.

    Prints each project folder; `l1ml verify RUN_DIR` (or DIR) checks them.
    """
    from pathlib import Path

    own = [name for name, given in (("--keras", keras), ("--xgboost", xgboost_model), ("--conifer", conifer_model)) if given]
    if len(own) > 1:
        raise click.UsageError(f"give one model: {' and '.join(own)} were both given")
    if own:
        if run_dir or not out:
            raise click.UsageError(f"{own[0]} takes no RUN_DIR and needs --out DIR")
        if (weights or reuse_factor) and not keras:
            raise click.UsageError("--weights and --reuse-factor go with --keras")
        if score_type and keras:
            raise click.UsageError("--score-type goes with --xgboost or --conifer")
        start_tracking(tracking_uri, no_tracking, target=out)
        for folder in _convert_own(keras, weights, xgboost_model, conifer_model, Path(out), input_type=input_type,
                                   score_type=score_type, target=target or "vu13p", backend=backend,
                                   reuse_factor=reuse_factor or 1, clock_ns=clock_ns, rtl=rtl):
            click.echo(str(folder))
        track_step("convert", out, tracking_uri, no_tracking)
        return
    if not run_dir:
        raise click.UsageError("give a training run folder, or your own model with --keras, --xgboost or --conifer and --out DIR")
    if weights or out or input_type or score_type or clock_ns:
        raise click.UsageError("--weights, --input-type, --score-type, --clock and --out go with --keras, --xgboost or --conifer")
    from l1ml.firmware.convert import convert_run

    start_tracking(tracking_uri, no_tracking, target=run_dir)

    result = convert_run(run_dir, target=target, backend=backend, reuse_factor=reuse_factor, rtl=rtl)
    track_step("convert", run_dir, tracking_uri, no_tracking)
    for folder in result.project if isinstance(result.project, list) else [result.out_dir]:
        click.echo(str(folder))
    if result.rtl_dir is not None:
        click.echo(str(result.rtl_dir))


def _convert_own(keras, weights, xgboost_model, conifer_model, out, *, input_type, score_type, target, backend,
                 reuse_factor, clock_ns, rtl) -> list:
    from pathlib import Path

    from l1ml.errors import L1mlError
    from l1ml.firmware import byo

    if keras:
        if backend in ("xilinxhls", "vhdl"):
            raise L1mlError("networks convert with hls4ml: vitis or vivado", key="--backend", value=backend)
        return byo.convert_keras(Path(keras), Path(weights) if weights else None, out, input_type=input_type, target=target,
                                 backend=backend or "vitis", reuse_factor=reuse_factor, clock_period_ns=clock_ns, rtl=rtl)
    if backend in ("vitis", "vivado"):
        raise L1mlError("BDTs convert with conifer: xilinxhls or vhdl", key="--backend", value=backend)
    if rtl:
        raise L1mlError("the RTL path (--rtl) is for networks; a BDT's RTL is conifer's VHDL (--backend vhdl)", key="--rtl")
    convert_bdt = byo.convert_xgboost if xgboost_model else byo.convert_conifer
    return convert_bdt(Path(xgboost_model or conifer_model), out, input_type=input_type, score_type=score_type,
                       target=target, backend=backend, clock_period_ns=clock_ns)
