"""`l1ml estimate`: the firmware cost of a converted model from open-source tools, without Vivado."""

from __future__ import annotations

import click

from l1ml.cli.tracking import start_tracking, track_step, tracking_options

COLUMNS = ("METHOD", "OPERATIONS", "LUT", "FF", "DSP", "CARRY", "BOPs", "DEPTH", "LATENCY", "% DEVICE", "BUDGET")


@click.command()
@click.argument("targets", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--target", "hw_target", help="FPGA target (name from `l1ml hw list` or YAML path) [default: the one converted for, else vu13p].")
@click.option("--json", "as_json", is_flag=True, help="Print estimate.json itself (a list of them for several folders), and nothing else on stdout.")
@click.option("--counts-only", is_flag=True, help="Only the exact operation counts (no RTL or BDT synthesis).")
@tracking_options
def estimate(targets: tuple[str, ...], hw_target: str | None, as_json: bool, counts_only: bool, tracking_uri: str | None,
             no_tracking: bool) -> None:
    """Estimate the firmware cost of TARGET (a training run, or a model converted with --out) without Vivado.

    Writes TARGET/estimate/estimate.json and prints a table of each method's figures, then the path of the file.
    Several TARGETs are estimated one after the other and compared in one table.
    """
    import json
    from pathlib import Path

    from l1ml.estimate.run import OUT_DIR, REPORT
    from l1ml.estimate.run import estimate as run

    for t in targets:
        start_tracking(tracking_uri, no_tracking, target=t)
    reports = [run(t, hw_target=hw_target, methods=("counts",) if counts_only else ("counts", "rtl", "bdt"),
                   log=lambda message: click.echo(message, err=True)) for t in targets]
    paths = [Path(t) / OUT_DIR / REPORT for t in targets]
    for t in targets:
        track_step("estimate", t, tracking_uri, no_tracking)
    if as_json:
        texts = [p.read_text() for p in paths]
        click.echo(texts[0] if len(texts) == 1 else json.dumps([json.loads(t) for t in texts], indent=2) + "\n", nl=False)
        return
    lines = report_lines(reports[0]) if len(reports) == 1 else comparison_lines(targets, reports)
    for line in lines:
        click.echo(line)
    for path in paths:
        click.echo(str(path))


def comparison_lines(targets, reports) -> list[str]:
    """One row per model and method, for several estimated folders."""
    rows = [("MODEL", "KIND", "TARGET", *COLUMNS)]
    for folder, report in zip(targets, reports):
        name = _model_name(folder)
        rows += [(name, report.kind, report.target, *_method_row(method, f)) for method, f in report.methods.items()]
    lines = _table(rows)
    lines += [f"{_model_name(t)} {name}: did not run: {why}" for t, r in zip(targets, reports) for name, why in r.failed.items()]
    return [*lines, f"These are {reports[0].notice}."]


def _model_name(folder) -> str:
    from pathlib import Path

    path = Path(folder).resolve()
    return f"{path.parent.name}/{path.name}" if path.parent.name not in ("", "runs") else path.name


def report_lines(report) -> list[str]:
    """The methods' table, the per-layer counts of a network (a BDT's trees in a few lines), and the notice."""
    lines = [f"{report.kind} for {report.target} ({report.part}), clock {report.clock_period_ns:g} ns, "
             f"latency budget {report.latency_budget_ns:g} ns"]
    rows = [COLUMNS] + [_method_row(name, f) for name, f in report.methods.items()]
    lines += _table(rows)
    lines += [f"{name}: did not run: {why}" for name, why in report.failed.items()]
    counts = report.methods.get("counts")
    if counts is not None and report.kind == "network":
        lines += ["", *_table(_layer_rows(counts.details))]
    elif counts is not None:
        lines += ["", *_bdt_lines(counts.details)]
    lines.append(f"These are {report.notice}.")
    return lines


def _method_row(name: str, f) -> tuple[str, ...]:
    latency = "-"
    if f.latency_cycles is not None or f.latency_ns is not None:
        latency = f"{_n(f.latency_cycles)} cyc / {_n(f.latency_ns)} ns"
    device = "-"
    if f.fraction_of_device:
        resource, fraction = max(f.fraction_of_device.items(), key=lambda item: item[1])
        device = f"{fraction:.2%} {resource}"
    budget = {True: "ok", False: "OVER", None: "-"}[f.within_budget]
    d = f.details
    operations = "-"
    if "multiplications" in d:
        operations = f"{d['multiplications']} mult, {d['adders']} add"
    elif "comparators_total" in d:
        operations = f"{d['comparators_total']} cmp, {d['adders']} add"
    return (name, operations, _n(f.lut), _n(f.ff), _n(f.dsp), _n(f.carry), _n(f.bops), _n(f.logic_depth), latency, device, budget)


def _layer_rows(details: dict) -> list[tuple[str, ...]]:
    rows = [("LAYER", "CLASS", "SHAPE", "MULT", "WIDTHS", "SHIFT", "ADDERS", "ACC", "BOPs")]
    for row in details["layers"]:
        shape = f"{row['n_in']}x{row['n_out']}" if "n_in" in row else str(row.get("elements", "-"))
        kind = row["class"] + (f" {row.get('op') or row.get('activation')}" if row["class"] != "Dense" else "")
        width = row.get("accumulator_width") or row.get("adder_width")
        rows.append((row["name"], kind, shape, str(sum(row["multiplications"].values())),
                     ",".join(row["multiplications"]) or "-", str(row["shift_only"]), str(row["adders"]), _n(width),
                     str(row["bops"])))
    widths = ",".join(f"{w}:{n}" for w, n in details["multiplications_by_width"].items()) or "-"
    rows.append(("total", "", "", str(details["multiplications"]), widths, str(details["shift_only"]),
                 str(details["adders"]), "", str(sum(r["bops"] for r in details["layers"]))))
    return rows


def _bdt_lines(details: dict) -> list[str]:
    tree = details["adder_tree"]
    comparators = ", ".join(f"{n} of {w} bits" for w, n in details["comparators"].items()) or "none"
    return [f"trees: {details['n_trees']} x {details['n_scores']} score(s), {details['nodes']} nodes, "
            f"{details['leaves']} leaves, max depth {details['max_depth']}",
            f"comparators: {comparators} ({details['threshold_type']})",
            f"adders: {details['adders']} of {tree['width']} bits ({tree['adders_per_score']} per score, "
            f"{tree['depth']} deep, {details['offset_adders']} for offsets; score {details['score_type']})"]


def _n(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
