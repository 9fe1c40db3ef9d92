"""The `l1ml` command: one click group, one module per sub-command group, each a thin layer over a library function.

User mistakes (`L1mlError`, click usage errors) print one line and exit non-zero, without a traceback;
`--debug` shows the traceback of any error.

The command modules import the library inside each command, not at their top: that keeps `l1ml --help` and quick
commands such as `l1ml synth status` instant. Elsewhere only TensorFlow, QKeras, hls4ml, conifer, xgboost, matplotlib
and Pythia (and the l1ml modules that import them at their top) are imported inside functions, marked `# heavy`.
"""

from __future__ import annotations

import os
import signal
import sys

import click

from l1ml import __version__
from l1ml.errors import L1mlError

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE: a bug, never a status a pipeline acts on (`l1ml retrain` uses 3 and 4)
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="l1ml")
@click.option("--debug", is_flag=True, help="Show the Python traceback of any error.")
def cli(debug: bool) -> None:
    """l1ml: machine learning for Level-1 trigger FPGAs.

    \b
    Pipeline:  data -> train -> convert -> verify -> synth -> deliver
    Each step writes a run directory with a manifest.json of what went in,
    and is tracked in MLflow (track, models: the registry; retrain).
    search: hyperparameter searches, each trial a job.
    """


def _register() -> None:
    from l1ml.cli import (
        config_cmd,
        convert_cmd,
        data_cmd,
        deliver_cmd,
        estimate_cmd,
        hw_cmd,
        models_cmd,
        retrain_cmd,
        search_cmd,
        synth_cmd,
        track_cmd,
        train_cmd,
        verify_cmd,
    )

    cli.add_command(data_cmd.data)
    cli.add_command(train_cmd.train)
    cli.add_command(convert_cmd.convert)
    cli.add_command(verify_cmd.verify)
    cli.add_command(estimate_cmd.estimate)
    cli.add_command(config_cmd.config)
    cli.add_command(hw_cmd.hw)
    cli.add_command(synth_cmd.synth)
    cli.add_command(deliver_cmd.deliver)
    cli.add_command(track_cmd.track)
    cli.add_command(models_cmd.models)
    cli.add_command(retrain_cmd.retrain)
    cli.add_command(search_cmd.search)


_register()


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system's wall-time limit, `kill`): unwound like Ctrl-C so that nothing is left half-written."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    signal.signal(signal.SIGTERM, _on_sigterm)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow 2.14 logs spurious CUDA-plugin errors on CPU hosts
    try:
        code = cli.main(args=args, prog_name="l1ml", standalone_mode=False)
    except click.exceptions.Abort as e:  # click turns KeyboardInterrupt (and so Terminated) into Abort
        terminated = isinstance(e.__cause__, Terminated)
        click.echo("terminated" if terminated else "interrupted", err=True)
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except L1mlError as e:
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        click.echo("terminated" if terminated else "interrupted", err=True)
        sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
    except Exception as e:  # a bug, not a user mistake: say so, keep it to one line unless asked
        if debug:
            raise
        click.echo(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
