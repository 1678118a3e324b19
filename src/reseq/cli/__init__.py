"""Command-line interface: a thin layer over the functional core.

Each sub-module registers its commands on :data:`main`. A :class:`~reseq.errors.ReseqError`
(bad input) becomes one ``reseq: error: ...`` line on stderr and a non-zero exit code; so does
a usage error (unknown option or command, an option value out of range: exit code 2). As a
safety net, an operating-system error (full disk, permission denied, read-only file system)
becomes one line naming the path, and any other unexpected exception one line too (set
``RESEQ_DEBUG=1`` for its traceback). SIGTERM and SIGHUP, like Ctrl-C, unwind the command so
that every temporary file is removed, then exit 143 / 129 (130 for Ctrl-C).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings

import click

from .. import __version__
from ..errors import ReseqError

__all__ = ["main"]

# Sub-modules that add commands to `main`; each is optional while it is being written.
_COMMAND_MODULES = ["assets", "distances", "sequence", "evaluate", "vae", "cache", "studio", "layout"]


def _line(text: object) -> str:
    """One printable line: control characters (a newline in a file name) and undecodable bytes
    of file names shown as escapes, runs of white space as one space."""
    text = " ".join(str(text).split(" "))
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _usage_exit(exc: click.UsageError) -> None:
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command group: show its help
        raise exc
    hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
    click.echo(f"reseq: error: {_line(exc.format_message())}{hint}", err=True)
    sys.exit(exc.exit_code)


class _Terminated(BaseException):
    """Raised in the main thread by SIGTERM, so that ``finally`` clauses clean up."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # one clean-up, not a second interruption
    raise _Terminated(signum)


def _os_error_line(exc: OSError) -> str:
    from .._util import os_error_message

    where = exc.filename if exc.filename is not None else None
    where2 = f" -> {exc.filename2}" if getattr(exc, "filename2", None) else ""
    what = os_error_message(exc)
    return f"{where}{where2}: {what}" if where is not None else what


class _Group(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage_exit(exc)
            raise  # pragma: no cover - _usage_exit exits

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        previous = None
        for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print escaped
            try:
                stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                pass
        if ctx.parent is None:
            try:
                previous = {sig: signal.signal(sig, _on_sigterm)
                            for sig in (signal.SIGTERM, signal.SIGHUP)}
            except (ValueError, AttributeError):  # not the main thread: leave signals alone
                pass
        try:
            return self._invoke(ctx)
        finally:
            for sig, handler in (previous or {}).items():
                signal.signal(sig, handler)

    def _invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _usage_exit(exc)
        except ReseqError as exc:
            click.echo(f"reseq: error: {_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("reseq: interrupted", err=True)
            sys.exit(130)
        except _Terminated as exc:
            signum = exc.args[0] if exc.args else signal.SIGTERM
            click.echo(f"reseq: error: terminated ({signal.Signals(signum).name}); nothing "
                       "half-written was left", err=True)
            sys.exit(128 + int(signum))
        except MemoryError:
            click.echo("reseq: error: out of memory; try a smaller --size or fewer frames", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except OSError as exc:
            if os.environ.get("RESEQ_DEBUG"):
                raise
            click.echo(f"reseq: error: {_line(_os_error_line(exc))}", err=True)
            sys.exit(1)
        except Exception as exc:  # a bug: still one line, the traceback on request
            if os.environ.get("RESEQ_DEBUG"):
                raise
            text = _line(" ".join(str(exc).split()))[:300]
            click.echo(f"reseq: error: unexpected {type(exc).__name__}: {text} (a bug in reseq? "
                       "set RESEQ_DEBUG=1 for the traceback)", err=True)
            sys.exit(1)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning is one ``reseq: warning: ...`` line: no internal path, no source line."""
    text = _line(" ".join(str(message).split()))
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
