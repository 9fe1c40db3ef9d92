"""`l1ml config`: check a config file, export the JSON schemas."""

from __future__ import annotations

import click
import yaml

from l1ml.config.kinds import KINDS


@click.group()
def config() -> None:
    """Config files: validation and JSON schemas."""


@config.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.argument("file", type=click.Path(dir_okay=False))
def check(kind: str, file: str) -> None:
    """Validate FILE as a KIND config and print it with every default filled in.

    A train (or search) config is also checked against the files it names: the samples of its data config or event
    file, the trigger rates its test background resolves, a target given by path; a search config's every range end
    and choice must make a valid train config.
    """
    from l1ml.config.loader import load_config

    _, model = load_config(file, KINDS[kind])
    warnings = []
    if kind == "data":
        from l1ml.data.processes import check_processes

        check_processes(model, file)
    if kind in ("train", "search"):
        from l1ml.config.checks import check_train_config

        warnings = check_train_config(model, file)
    if kind == "search":
        from l1ml.config.loader import load_yaml
        from l1ml.config.search import check_space

        check_space(load_yaml(file)[1], model, file)
    click.echo(yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False).rstrip())
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{file}: valid {kind} config", err=True)


@config.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)), required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write every schema as KIND.schema.json here.")
def schema(kind: str | None, out_dir: str | None) -> None:
    """Print the JSON schema of a KIND of config, or write all of them with --out."""
    from l1ml.config.kinds import schema_text, write_schemas

    if out_dir:
        from pathlib import Path

        from l1ml import documents

        for path in [*write_schemas(out_dir), *documents.write_schemas(Path(out_dir) / "documents")]:
            click.echo(str(path))
    elif kind:
        click.echo(schema_text(kind), nl=False)
    else:
        raise click.UsageError("give a KIND or --out DIR")
