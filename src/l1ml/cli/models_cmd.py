"""`l1ml models`: the model registry of l1ml's deliveries (list, show, promote, history); logic in l1ml.track.registry."""

from __future__ import annotations

import json
import sys

import click

EXIT_REFUSED = 6  # the promotion was refused (as `l1ml deliver` refuses a delivery)


def _store(fn):
    fn = click.option("--runs", "runs", default="runs", show_default=True, type=click.Path(file_okay=False),
                      help="Runs root whose local store (<runs>/mlflow/) holds the registry, without --tracking-uri.")(fn)
    return click.option("--tracking-uri", "tracking_uri", metavar="URI",
                        help="The tracking store (http(s)://HOST:PORT or sqlite:///PATH.db); default "
                             "$MLFLOW_TRACKING_URI, else the local store of --runs.")(fn)


def _client(tracking_uri: str | None, runs: str, *, must_exist: bool = True):
    """The client of the store, or None for a local store that was never made (nothing tracked there yet)."""
    from l1ml.errors import L1mlError
    from l1ml.track.store import DATABASE, client, is_local, local_folder, resolve_uri

    uri = resolve_uri(tracking_uri, runs)
    if is_local(uri) and not (local_folder(uri) / DATABASE).is_file():
        if must_exist:
            raise L1mlError("no tracking store here: nothing was tracked (give --runs or --tracking-uri)", path=uri)
        return None
    return client(uri)


def _call(fn, *args, **kwargs):
    """A registry call; a store that fails (a server down, a database that is not MLflow's) is one line, not a trace."""
    from mlflow.exceptions import MlflowException  # heavy: MLflow

    from l1ml.errors import L1mlError

    try:
        return fn(*args, **kwargs)
    except MlflowException as exc:
        raise L1mlError(f"the tracking store failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _table(rows: list[tuple]) -> None:
    """Columns aligned as `l1ml deliver --list` aligns them (the last one is not padded)."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[-1]))


def _json(data) -> None:
    click.echo(json.dumps(data, indent=1))


@click.group()
def models() -> None:
    """The model registry: every delivery a model version, aliases (production, ...) promoted with a recorded history.

    \b
    Exit status: 0 done, 1 usage or input error (an unknown model, alias or version), 6 promotion refused.
    """


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_store
def list_(as_json: bool, tracking_uri: str | None, runs: str) -> None:
    """List the registered models: latest version (and its delivery version), aliases -> versions, created."""
    from l1ml.track.registry import list_models

    c = _client(tracking_uri, runs, must_exist=False)
    rows = _call(list_models, c) if c is not None else []
    if as_json:
        return _json(rows)
    if not rows:
        click.echo("no registered models", err=True)
        return
    _table([("MODEL", "VERSIONS", "LATEST", "DELIVERY", "ALIASES", "CREATED")]
           + [(r["name"], r["versions"], r["latest_version"] or "-", r["latest_delivery_version"] or "-",
               ", ".join(f"{a}={v}" for a, v in r["aliases"].items()) or "-", r["created"]) for r in rows])


@models.command()
@click.argument("spec", metavar="NAME[@ALIAS|@VERSION]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_store
def show(spec: str, as_json: bool, tracking_uri: str | None, runs: str) -> None:
    """Show a model version (NAME: the latest; VERSION: an MLflow version number or a delivery version X.Y.Z): its
    delivery, verify and synthesis summaries, thresholds, archive, run folder, MLflow run, and the model's alias history."""
    from l1ml.track.registry import describe, resolve

    c = _client(tracking_uri, runs)
    info = _call(lambda: describe(c, resolve(c, spec)))
    if as_json:
        return _json(info)
    verify, synthesis, thresholds = info["verify"] or {}, info["synthesis"] or {}, info["thresholds"] or {}
    checks = ", ".join(f"{n} {k.get('mismatches')} mismatches/{k.get('events')}" for n, k in (verify.get("checks") or {}).items())
    rates = ", ".join(f"{t['rate_khz']:g} kHz {t['hex']} ({t['value']:g})" for t in thresholds.get("thresholds", []))
    lines = [
        ("model", info["name"]), ("version", info["version"]), ("delivery", info["delivery_version"] or "-"),
        ("aliases", ", ".join(info["aliases"]) or "-"), ("kind", info["kind"] or "-"),
        ("verify", f"{'passed' if info['verify_passed'] else 'NOT PASSED'} on {verify.get('events')} events "
                   f"({verify.get('created')}): {checks or '-'}"),
        ("synthesis", _synthesis_text(synthesis)),
        ("thresholds", f"{thresholds.get('score_type')}: {rates}" if thresholds else "-"),
        ("archive", f"{info['archive_path']} (SHA-256 {info['archive_sha256']})"),
        ("package", info["package_dir"] or "-"), ("run folder", info["run_dir"] or "-"), ("run", info["run"] or "-"),
        ("mlflow run", info["mlflow_run_id"] or "-"), ("deliver run", info["deliver_run_id"] or "-"),
        ("source", info["source"]), ("registered", info["created"]),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key.ljust(width)}  {value}")
    click.echo("")
    _history_table(info["name"], info["history"])


def _synthesis_text(synthesis: dict) -> str:
    if "job" in synthesis:
        text = (f"job {synthesis['job']}, {synthesis.get('tool_version')} for {synthesis.get('part')} at "
                f"{synthesis.get('clock_ns')} ns, latency {synthesis.get('latency_worst_cycles')} cycles, "
                f"within budget: {synthesis.get('within_budget')}")
    else:
        text = synthesis.get("none") or "-"
    rtl = synthesis.get("rtl")
    if rtl:
        text += f"; RTL by {rtl['tool']}: latency {rtl['latency_cycles']} cycles, {rtl['mismatches']} mismatches"
    return text


def _history_table(name: str, rows: list[dict]) -> None:
    if not rows:
        click.echo(f"no promotions of {name} recorded")
        return
    _table([("TIME", "ALIAS", "VERSION", "DELIVERY", "PREVIOUS", "UNTIL", "USER", "NOTE")]
           + [(r["time"], r["alias"], r["version"], r["delivery_version"] or "-", r["previous_version"] or "-",
               r["until"] or "-", r["user"], r["note"] or "-") for r in rows])


@models.command()
@click.argument("name")
@click.argument("version")
@click.option("--alias", default="production", show_default=True, help="The alias to point at VERSION.")
@click.option("--note", default="", help="Why: kept with the promotion in the model's history.")
@_store
def promote(name: str, version: str, alias: str, note: str, tracking_uri: str | None, runs: str) -> None:
    """Point --alias of model NAME at VERSION (an MLflow version number or a delivery version X.Y.Z), recorded with time,
    user and note. Refused (exit 6) when its verify did not pass, or its archive is missing or changed since it was
    registered."""
    from l1ml.track.registry import PromotionRefused
    from l1ml.track.registry import promote as run

    c = _client(tracking_uri, runs)
    try:
        done = _call(run, c, name, version, alias=alias, note=note)
    except PromotionRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    what = f"{name} version {done['version']}" + (f" (delivery {done['delivery_version']})" if done["delivery_version"] else "")
    if done["unchanged"]:
        click.echo(f"{what} holds {alias!r} already (since {done['time']})")
        return
    before = f"; before: version {done['previous_version']}" if done["previous_version"] else ""
    click.echo(f"{what} is {alias!r} since {done['time']}{before}")


@models.command()
@click.argument("name")
@click.option("--alias", default=None, help="Only this alias (with --at: default production).")
@click.option("--at", "when", metavar="DATE", help="YYYY-MM-DD (that day, UTC) or an ISO time (no zone: UTC): the "
              "version(s) that held the alias then.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_store
def history(name: str, alias: str | None, when: str | None, as_json: bool, tracking_uri: str | None, runs: str) -> None:
    """The promotions of model NAME in time order; with --at, which version held the alias (production) at that time."""
    from l1ml.track import registry

    if when is None:
        c = _client(tracking_uri, runs)
        rows = _call(registry.history, c, name, alias)
        return _json(rows) if as_json else _history_table(name, rows)
    start, end = registry.parse_when(when)
    alias = alias or "production"
    c = _client(tracking_uri, runs)
    rows = _call(registry.during, c, name, start, end, alias)
    if as_json:
        return _json(rows)
    if not rows:
        click.echo(f"no version of {name} held {alias!r} at {when}", err=True)
        return
    _table([("VERSION", "DELIVERY", "ALIAS", "FROM", "UNTIL", "NOTE")]
           + [(r["version"], r["delivery_version"] or "-", r["alias"], r["time"], r["until"] or "-", r["note"] or "-")
              for r in rows])
