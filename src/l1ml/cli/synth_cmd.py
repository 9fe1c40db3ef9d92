"""`l1ml synth`: HLS synthesis, Vivado's synthesis of RTL (and C-simulation or GHDL checks) as scheduled jobs, with their
reports."""

from __future__ import annotations

import json
import sys
import time

import click

EXIT_JOB_FAILED = 5


def _parse(kind: str, text: str | None):
    from l1ml.errors import L1mlError
    from l1ml.synth.outcome import parse_duration, parse_memory

    if text is None:
        return None
    try:
        return parse_memory(text) if kind == "mem" else parse_duration(text)
    except ValueError as exc:
        raise L1mlError(str(exc), key=f"--{kind}", value=text) from None


@click.group()
def synth() -> None:
    """Queue HLS syntheses (or Vivado's synthesis of RTL) on this host (local), Slurm or HTCondor; follow them; read their
    reports.

    Jobs and their folders live in $L1ML_STATE (default ~/.local/state/l1ml), on a local disk.
    """


@synth.command()
@click.argument("target", type=click.Path(file_okay=False, exists=True))
@click.option("--backend", type=click.Choice(["local", "slurm", "condor"]), default="local", show_default=True)
@click.option("--kind", type=click.Choice(["hls", "verify", "ghdl", "vivado-rtl"]), default="hls", show_default=True,
              help="hls: Vitis/Vivado HLS; verify: `l1ml verify` (C-simulation); ghdl: the BDT VHDL under GHDL; "
                   "vivado-rtl: Vivado's logic synthesis of the network's RTL (`l1ml convert RUN --rtl`), no HLS.")
@click.option("--firmware", "firmware_backend", help="Which project of TARGET/firmware/ (vitis, vivado, xilinxhls, rtl).")
@click.option("--steps", default="csynth", show_default=True, help="Comma-separated: csynth, cosim, export, vsynth.")
@click.option("--mem", help="Memory request, e.g. 48G [default: estimated from the model; HLS: at least --mem-floor].")
@click.option("--mem-floor", default="8G", show_default=True, help="Smallest memory request of an HLS job.")
@click.option("--time", "time_limit", default="8h", show_default=True, help="Time limit, e.g. 8h, 90m.")
@click.option("--cpus", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--settings", help="Script to source before the tool on the executing host (e.g. .../settings64.sh).")
@click.option("--container", help="Apptainer image that holds the tool.")
@click.option("--partition", help="Slurm partition.")
@click.option("--account", help="Slurm account.")
@click.option("--force", is_flag=True, help="Queue it even if the same project was submitted before.")
def submit(target, backend, kind, firmware_backend, steps, mem, mem_floor, time_limit, cpus, settings, container,
           partition, account, force) -> None:
    """Write a self-contained job folder for TARGET (a converted run or --out folder) and submit it. Prints the job id."""
    from l1ml.synth.queue import SubmitOptions
    from l1ml.synth.queue import submit as run

    options = SubmitOptions(kind=kind, backend=backend, firmware_backend=firmware_backend,
                            steps=tuple(s.strip() for s in steps.split(",") if s.strip()), mem_gb=_parse("mem", mem),
                            time_s=_parse("time", time_limit), cpus=cpus, floor_gb=_parse("mem", mem_floor),
                            settings=settings, container=container, force=force, partition=partition, account=account)
    job = run(target, options)
    click.echo(f"{job.id}: {job.state} on {job.backend}, {job.mem_gb:g} GB, folder {job.job_dir}", err=True)
    click.echo(job.id)


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def _recorded(job):
    """The job's recorded result (None while it runs), or why it cannot be read (an older l1ml's, or damaged)."""
    from l1ml.errors import L1mlError

    try:
        return job.recorded_result(), None
    except L1mlError as exc:
        return None, str(exc)


def _result_text(job) -> str:
    result, problem = _recorded(job)
    if problem or result is None or job.state != "done":
        return problem or job.message or ""
    reports, csynth = result.reports, result.reports.csynth
    if reports.verify:
        return "verify passed" if reports.verify.passed else f"verify FAILED: {reports.verify.failed_checks}"
    if reports.ghdl:
        return f"GHDL output equals the expected scores ({reports.ghdl.events} events)"
    if csynth:
        res = csynth["resources"]
        return (f"{csynth['latency_worst']} cycles, LUT {res.get('lut', {}).get('used', 0):.0f}, "
                f"DSP {res.get('dsp', {}).get('used', 0):.0f}" + _budget_text(result))
    if reports.vsynth:  # a vivado-rtl job
        res, timing = reports.vsynth["resources"], reports.vsynth.get("timing") or {}
        wns = f", WNS {timing['wns_ns']} ns" if timing.get("wns_ns") is not None else ""
        return (f"Vivado LUT {res.get('lut', {}).get('used', 0):.0f}, FF {res.get('ff', {}).get('used', 0):.0f}, "
                f"DSP {res.get('dsp', {}).get('used', 0):.0f}{wns}")
    return job.message or ""


def _budget_text(result) -> str:
    over = [row.item for row in result.budget if not row.ok]
    if over:
        return f"; OVER budget: {', '.join(over)}"
    return f"; budget not compared: {result.budget_unknown}" if result.budget_unknown else ""


@synth.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """A table of the jobs: job, model, backend, state, host, elapsed, peak memory, result."""
    from l1ml.synth.queue import status as run

    jobs = run()
    if as_json:
        click.echo(json.dumps([_job_json(job) for job in jobs], indent=1))
        return
    now = time.time()
    rows = [("JOB", "MODEL", "BACKEND", "STATE", "HOST", "ELAPSED", "PEAK MEM", "RESULT")]
    for j in jobs:
        rows.append((j.id, j.model, j.backend, j.state, j.host or "-", _elapsed(j.elapsed(now)),
                     f"{j.peak_mem_gb:.2f} GB" if j.peak_mem_gb else "-", _result_text(j)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])


def _job_json(job) -> dict:
    result, problem = _recorded(job)
    return {**job.__dict__, "result": result.model_dump(mode="json") if result else None,
            **({"result_problem": problem} if problem else {})}


@synth.command()
@click.argument("jobs", nargs=-1)
@click.option("--timeout", type=float, help="Give up after this many seconds.")
def wait(jobs, timeout) -> None:
    """Wait until the given jobs have ended and print how each did. Exit 5 if any did not succeed.

    Without JOBS: every job that no wait has reported yet (those queued or running, and those that ended since).
    """
    from l1ml.cli.progress import Display
    from l1ml.synth.queue import wait as run

    with Display() as display:
        ended = run(list(jobs), timeout_s=timeout, progress=_jobs_bar(display))
    if not ended:
        click.echo("no jobs to wait for: none is queued or running, and earlier waits reported every one that ended", err=True)
    for j in ended:
        click.echo(f"{j.id}: {j.state}" + (f" ({j.message})" if j.message and j.state != "done" else ""))
    if any(j.state != "done" for j in ended):
        sys.exit(EXIT_JOB_FAILED)


def _jobs_bar(display):
    """How many of the awaited jobs have ended, and how many of the others run or wait."""
    from collections import Counter

    from l1ml.synth.outcome import FINAL

    bar = display.bar("synth wait", "jobs ended", rates=False)

    def show(jobs) -> None:
        if not jobs:
            return
        states = Counter(j.state for j in jobs if j.state not in FINAL)
        bar.update(len(jobs) - sum(states.values()), len(jobs), ", ".join(f"{n} {state}" for state, n in sorted(states.items())))

    return show


@synth.command()
@click.argument("job")
def cancel(job) -> None:
    """Cancel a queued or running job; of an ended (lost) job, stop whatever of it still runs."""
    from l1ml.synth.outcome import FINAL
    from l1ml.synth.queue import cancel as run

    ended = run(job)
    if ended.state in FINAL:
        click.echo(f"{ended.id}: {ended.state} ({ended.message})")
    else:
        click.echo(f"{ended.id}: cancel requested ({ended.state})")


@synth.command()
@click.argument("job")
def logs(job) -> None:
    """Print what a job wrote (job.log in its folder)."""
    from l1ml.synth.queue import logs as run

    click.echo(run(job), nl=False)


@synth.command()
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--target", "hw_target", help="Compare with this hw target's budgets (name or YAML).")
@click.option("--baseline", help="Compare with a baseline result: a job id, job folder or report file (same tool and part).")
def report(path, as_json, hw_target, baseline) -> None:
    """Print the parsed result of a job (id or folder) or of one report file (csynth.xml/.rpt, vivado_synth.rpt).

    A finished job with Vivado's figures is shown beside `l1ml estimate`'s open-source estimate of the same firmware
    (TARGET/estimate/estimate.json), and the ratios are recorded there."""
    data, job_dir = _load_result(path)
    comparison = _compare_with_estimate(job_dir)
    if comparison is not None:
        data["estimate"] = comparison.to_dict()
    if baseline:
        from l1ml.errors import L1mlError
        from l1ml.synth.results import against_baseline

        new, old = _csynth_of(data), _csynth_of(_load_result(baseline)[0])
        if not new or not old:
            raise L1mlError("both results need a C-synthesis report", key="--baseline", value=baseline)
        data["baseline"] = against_baseline(new, old)
    if hw_target:
        from l1ml.config.hw import load_target
        from l1ml.synth.results import against_budget

        csynth = _csynth_of(data)
        data["budget"] = against_budget(csynth, load_target(hw_target)) if csynth else []
        data["budget_unknown"] = None if csynth else "no C-synthesis report"
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    if "state" in data:
        click.echo(f"state: {data['state']} ({data.get('message', '')}); tool: {data.get('tool_version') or '-'}")
    for name, rep in data.get("reports", {}).items():
        if isinstance(rep, dict) and rep.get("kind") in ("csynth", "utilization"):
            _print_report(name, rep)
        if isinstance(rep, dict) and rep.get("timing"):
            _print_timing(rep["timing"])
    for row in data.get("budget", []):
        click.echo(f"  budget {row['item']:<30} {row['value']:>12} <= {row['budget']:<10} {'ok' if row['ok'] else 'OVER'}")
    if not data.get("budget") and _csynth_of(data):
        click.echo(f"  budget not compared: {data.get('budget_unknown') or 'no hw target given (--target)'}")
    for row in data.get("baseline", []):
        if "message" in row:
            click.echo(f"  baseline: {row['message']}")
        else:
            click.echo(f"  baseline {row['item']:<25} {row['value']:>12g} vs {row['baseline']:<12g} {row['change']:+.1%} "
                       f"{'ok' if row['ok'] else 'CHANGED'}")
    if comparison is not None:
        _print_comparison(comparison)


def _load_result(path: str):
    """A job's result (id or folder) or one report file, as {'reports': {...}, ...}, and the job's folder (None for a
    report file or a job that has not ended)."""
    from pathlib import Path

    from l1ml.synth.reports import parse_report

    p = Path(path)
    if p.is_file():
        return {"reports": {"file": parse_report(p).to_dict()}}, None
    if p.is_dir() and (p / "result.json").is_file():
        from l1ml.synth.jobs import read_result

        return read_result(p).model_dump(mode="json"), p
    from l1ml.synth.db import JobDB

    job = JobDB().get(path)
    result = job.recorded_result()
    if result is None:
        return {"state": job.state, "message": job.message, "reports": {}}, None
    return result.model_dump(mode="json"), Path(job.job_dir)


def _compare_with_estimate(job_dir):
    """The job's Vivado figures against the estimate of its target, recorded there (None: nothing to compare)."""
    if job_dir is None:
        return None
    from l1ml.errors import L1mlError
    from l1ml.synth.estimate_ratio import Comparison, compare_and_record
    from l1ml.synth.jobs import read_result

    try:
        return compare_and_record(job_dir, read_result(job_dir))
    except L1mlError as exc:
        return Comparison(estimate=None, problem=str(exc))


def _print_comparison(comparison) -> None:
    from l1ml.synth.estimate_ratio import FIGURES

    if comparison.problem:
        where = f" ({comparison.estimate})" if comparison.estimate else ""
        click.echo(f"  estimate not compared{where}: {comparison.problem}")
        return
    click.echo(f"Vivado beside l1ml's open-source estimate, which is not a Vivado result ({comparison.estimate}):")
    for method, rows in comparison.rows.items():
        click.echo(f"  {'resource':<14} {'Vivado':>12} {f'estimate ({method})':>18} {'ratio Vivado/estimate':>22}")
        for row in rows:
            ratio = f"{row.ratio:.3f}" if row.ratio is not None else "-"
            click.echo(f"  {FIGURES[row.figure]:<14} {row.vivado:>12g} {row.estimate:>18g} {ratio:>22}")
        click.echo(f"  estimate ({method}): {comparison.tools[method]}")
    click.echo(f"  ratios {'recorded in' if comparison.recorded else 'already in'} {comparison.estimate} (vivado)")


def _print_timing(timing: dict) -> None:
    wns = timing["wns_ns"]
    clocks = ", ".join(f"{name} {period:g} ns" for name, period in timing["clocks"].items()) or "no clock"
    verdict = {True: "met", False: f"NOT met ({timing['failing_endpoints']} failing endpoints)", None: "nothing constrained"}
    click.echo(f"  timing ({clocks}): WNS {wns if wns is not None else '-'} ns, {verdict[timing['met']]}")


def _csynth_of(data: dict) -> dict | None:
    return next((r for r in data.get("reports", {}).values() if isinstance(r, dict) and r.get("kind") == "csynth"), None)


def _print_report(name: str, rep: dict) -> None:
    if rep["kind"] == "csynth":
        click.echo(f"{name}: {rep['tool']} {rep['version']}, {rep['part']}, top {rep['top']}")
        click.echo(f"  clock target {rep['clock_target_ns']} ns, estimated {rep['clock_estimated_ns']} ns, "
                   f"uncertainty {rep['clock_uncertainty_ns']} ns")
        click.echo(f"  latency {rep['latency_best']}-{rep['latency_worst']} cycles ({rep['latency_best_ns']:g}-"
                   f"{rep['latency_worst_ns']:g} ns), interval {rep['interval_min']}-{rep['interval_max']}, "
                   f"pipeline {rep['pipeline_type']}")
    else:
        click.echo(f"{name}: Vivado {rep['version']}, {rep['device']}, {rep['design_state']}")
    for res, u in rep["resources"].items():
        avail = u["available"]
        frac = f"{100 * u['used'] / avail:6.2f} %" if avail else "       -"
        click.echo(f"  {res:<9} {u['used']:>12g} / {avail if avail is not None else '-':>10}  {frac}")


@synth.command("config")
@click.option("--mem-budget", help="Memory the local queue may hand out on this host, e.g. 200G.")
@click.option("--cores", type=click.IntRange(min=1), help="Cores the local queue may hand out.")
@click.option("--partition", help="Default Slurm partition.")
@click.option("--account", help="Default Slurm account.")
def config(mem_budget, cores, partition, account) -> None:
    """Show or set the local queue's budget on this host and the Slurm defaults."""
    from l1ml.synth.db import JobDB
    from l1ml.synth.local import LocalBackend

    db = JobDB()
    if mem_budget:
        db.set_setting("local.mem_budget_gb", str(_parse("mem", mem_budget)))
    if cores:
        db.set_setting("local.cores", str(cores))
    for key, value in (("slurm.partition", partition), ("slurm.account", account)):
        if value:
            db.set_setting(key, value)
    mem, n = LocalBackend(db).budget()
    click.echo(f"local queue budget: {mem:g} GB, {n} cores; Slurm partition {db.setting('slurm.partition') or '-'}, "
               f"account {db.setting('slurm.account') or '-'} (database {db.path})")
