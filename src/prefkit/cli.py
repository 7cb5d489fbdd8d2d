"""The `prefkit` command line: a thin Typer layer over the library.

Each stage owns its commands in ``prefkit/<stage>/cli.py`` with a ``register(app)`` function;
that module imports only light things at module level so ``prefkit --help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import typer

from prefkit import __version__
from prefkit._cli import CLIError, console

app = typer.Typer(
    name="prefkit",
    help="Human-feedback and preference data: ingest, build, audit, rank, learn, explain, collect, simulate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Order here is the order in `prefkit --help`.
STAGES = (
    "io", "simulate", "build", "audit", "rank", "reward", "judge", "explain", "select", "align",
    "serve",
    "demo",
)  # fmt: skip


def _version(value: bool) -> None:
    if value:
        typer.echo(f"prefkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """prefkit: one engine for preference data."""


def _register_all() -> None:
    for stage in STAGES:
        name = f"prefkit.{stage}.cli" if stage != "demo" else "prefkit.demo"
        if importlib.util.find_spec(name.rsplit(".", 1)[0]) is None:
            continue
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        module.register(app)


_register_all()


def main() -> None:
    """Entry point: runs the app and turns user-facing errors into one line and an exit code."""
    from rich.markup import escape

    from prefkit.io.base import InputError, OptionError
    from prefkit.schema import SchemaError

    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except CLIError as e:
        console.print(
            f"[red]error:[/red] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True
        )
        sys.exit(e.code)
    except OptionError as e:
        console.print(
            f"[red]error:[/red] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except (InputError, SchemaError) as e:
        console.print(
            f"[red]error:[/red] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True
        )
        sys.exit(1)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except Exception as e:  # Click usage errors: its usage message, exit 2
        from prefkit._cli import is_usage_error, show_usage_error

        if is_usage_error(e):
            show_usage_error(e)
            sys.exit(e.exit_code)  # type: ignore[attr-defined]
        raise


if __name__ == "__main__":
    main()
