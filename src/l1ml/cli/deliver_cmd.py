"""`l1ml deliver`: the gated delivery of a verified run; `--check` and `--list` for delivered packages."""

from __future__ import annotations

import sys

import click

from l1ml.cli.tracking import runs_root_of_run, start_tracking, track_delivery, tracking_options

EXIT_REFUSED = 6  # the gate refused, or a package's emulator failed its test vectors
EXIT_CHECK_FAILED = 7  # --check found a changed, missing or extra file


@click.command()
@click.argument("target", required=False)
@click.option("--version", "version", help="The version to deliver, X.Y.Z (never overwritten), or 'next': one patch "
              "above the highest delivered version of the model (0.1.0 for the first).")
@click.option("--out", "out", default="deliveries", show_default=True, type=click.Path(file_okay=False),
              help="Root of the deliveries: <out>/<model>/<version>/ and <version>.tar.gz.")
@click.option("--no-synthesis", is_flag=True, help="No HLS synthesis needed: an RTL-only firmware delivery when the "
              "run has RTL (`l1ml convert --rtl`) that `l1ml verify` checked with Verilator (not synthesised by Vivado), "
              "else an emulator-only delivery with no firmware; the manifest and README say which.")
@click.option("--test-events", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Test events per sample in the test vectors (the adversarial events of verify are added).")
@click.option("--check", "check_mode", is_flag=True, help="Check the package TARGET (folder or .tar.gz) against its manifest.")
@click.option("--list", "list_mode", is_flag=True, help="List the delivered versions (of model TARGET, if given) with their status.")
@tracking_options
def deliver(target: str | None, version: str | None, out: str, no_synthesis: bool, test_events: int, check_mode: bool,
            list_mode: bool, tracking_uri: str | None, no_tracking: bool) -> None:
    """Deliver the run TARGET as deliveries/<model>/<version>/: HLS project and IP (and RTL, if converted with --rtl),
    CMSSW emulator, test vectors, scaling, thresholds and a manifest, only if it passed `l1ml verify` unchanged since
    (its RTL too) and its synthesis is within the hw target's budgets (or --no-synthesis). Prints the package folder.

    \b
    Exit status: 0 delivered, 1 usage or input error, 6 refused (each unmet condition is named),
    7 --check found a changed, missing or extra file.
    """
    from pathlib import Path

    if check_mode and list_mode:
        raise click.UsageError("--check and --list do not go together")
    if check_mode or list_mode:
        if version or no_synthesis:
            raise click.UsageError("--version and --no-synthesis are for delivering a run")
        return _check(target) if check_mode else _list(Path(out), target)
    if not target or not version:
        raise click.UsageError("give a training run and --version X.Y.Z (or --check PATH, --list [MODEL])")
    from l1ml.deliver.gate import DeliveryRefused
    from l1ml.deliver.manifest import kind_label
    from l1ml.deliver.package import DeliverOptions
    from l1ml.deliver.package import deliver as run

    start_tracking(tracking_uri, no_tracking, runs_root=runs_root_of_run(target), registry=True)
    options = DeliverOptions(version=version, out=Path(out), synthesis=not no_synthesis, test_events=test_events)
    try:
        delivery = run(target, options, log=lambda m: click.echo(m, err=True))
    except DeliveryRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    m = delivery.manifest
    click.echo(f"delivered {m.model} {m.version} ({kind_label(m)}) in {delivery.seconds:.0f} s "
               f"(emulator built and checked in {m.emulator['self_test']['seconds']:.0f} s): {len(m.files)} files, "
               f"{delivery.size_mb:.1f} MB; archive {delivery.archive}", err=True)
    track_delivery(delivery.path, target, tracking_uri, no_tracking)
    click.echo(str(delivery.path.resolve()))


def _check(target: str | None) -> None:
    from l1ml.deliver.manifest import check, kind_label

    if not target:
        raise click.UsageError("--check needs the package folder or .tar.gz")
    result = check(target)
    for line in result.lines():
        click.echo(line, err=True)
    m = result.manifest
    click.echo(f"{result.path}: {m.model} {m.version} ({kind_label(m)}), {len(m.files)} files: {result.status()}")
    if not result.ok:
        sys.exit(EXIT_CHECK_FAILED)


def _list(root, model: str | None) -> None:
    from l1ml.deliver.manifest import list_deliveries

    found = list_deliveries(root, model)
    if not found:
        click.echo(f"no deliveries under {root}", err=True)
        return
    rows = [("MODEL", "VERSION", "KIND", "CREATED", "STATUS")] + [(d.model, d.version, d.kind, d.created, d.status) for d in found]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
