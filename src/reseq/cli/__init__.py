"""Command-line interface: a thin layer over the functional core.

Each sub-module registers its commands on :data:`main`. A :class:`~reseq.errors.ReseqError`
(bad input) becomes one ``reseq: error: ...`` line on stderr and a non-zero exit code; so does
a usage error (unknown option or command, an option value out of range: exit code 2).
"""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from .. import __version__
from ..errors import ReseqError

__all__ = ["main"]

# Sub-modules that add commands to `main`; each is optional while it is being written.
_COMMAND_MODULES = ["assets", "distances", "sequence", "evaluate", "vae", "layout"]


def _usage_exit(exc: click.UsageError) -> None:
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command group: show its help
        raise exc
    hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
    click.echo(f"reseq: error: {exc.format_message()}{hint}", err=True)
    sys.exit(exc.exit_code)


class _Group(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage_exit(exc)
            raise  # pragma: no cover - _usage_exit exits

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _usage_exit(exc)
        except ReseqError as exc:
            click.echo(f"reseq: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("reseq: interrupted", err=True)
            sys.exit(130)
        except MemoryError:
            click.echo("reseq: error: out of memory; try a smaller --size or fewer frames", err=True)
            sys.exit(1)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning is one ``reseq: warning: ...`` line: no internal path, no source line."""
    text = " ".join(str(message).split())
    click.echo(f"reseq: warning: {text}", err=True)


warnings.showwarning = _show_warning


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reseq")
def main() -> None:
    """Turn a pile of animation frames into new, smooth animation.

    SOURCE is a folder of images, a video file, an animated GIF/APNG/WebP, or a built-in sample
    (sample:bunny, sample:kenney-robot, ...; see `reseq assets list`).
    """


for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f".{_name}", __name__)
    except ModuleNotFoundError as _exc:  # pragma: no cover - only while a module is missing
        if _exc.name != f"{__name__}.{_name}":
            raise
