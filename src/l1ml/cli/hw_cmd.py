"""`l1ml hw`: the FPGA targets."""

from __future__ import annotations

import click


@click.group()
def hw() -> None:
    """FPGA targets: parts, resources, clocks, latency budgets."""


@hw.command("list")
def list_() -> None:
    """List the known targets."""
    from l1ml.config.hw import list_targets, load_target

    click.echo(f"{'target':<8}{'part':<24}{'LUT':>10}{'FF':>10}{'DSP':>7}{'BRAM36':>8}{'URAM':>6}{'clock ns':>12}{'budget ns':>11}")
    for name in list_targets():
        t = load_target(name)
        r = t.resources
        clocks = "/".join(f"{c:g}" for c in t.clock_periods_ns)
        click.echo(f"{name:<8}{t.part:<24}{r.lut:>10}{r.ff:>10}{r.dsp:>7}{r.bram_36k:>8}{r.uram:>6}{clocks:>12}"
                   f"{t.latency_budget_ns:>11g}")


@hw.command()
@click.argument("target")
def show(target: str) -> None:
    """Show one TARGET (a name from `l1ml hw list` or a YAML path)."""
    import yaml

    from l1ml.config.hw import load_target

    click.echo(yaml.safe_dump(load_target(target).model_dump(mode="json"), sort_keys=False).rstrip())
