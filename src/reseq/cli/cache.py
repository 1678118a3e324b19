"""``reseq cache info|clear``: what the cache holds, and emptying it."""

from __future__ import annotations

import click

from ..errors import ReseqError
from . import main

__all__ = ["cache_group"]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


@main.group("cache")
def cache_group() -> None:
    """The cache of deep features, distance matrices and assets.

    Entries are verified when read and recomputed when damaged. Features, matrices and DAE
    embeddings are kept under RESEQ_CACHE_MAX bytes (default 20G; e.g. 500M, 100G; 0 = no
    cap), least recently used first out. RESEQ_CACHE_DIR moves the cache; RESEQ_NO_CACHE=1
    turns it off.
    """


@cache_group.command("info")
def info_cmd() -> None:
    """Print the cache folder, entries and bytes per kind, and the size cap."""
    from .. import cache

    cap = cache.max_bytes()
    click.echo(f"cache folder: {cache.root()}")
    try:
        usage = cache.usage()
    except OSError as exc:
        raise ReseqError(f"cannot read the cache at {cache.root()}: {exc.strerror or exc}") from None
    counted = sum(b for kind, (_, b) in usage.items() if kind.split("/")[0] in cache.KINDS)
    width = max([len(k) for k in usage] + [10])
    for kind, (files, nbytes) in usage.items():
        click.echo(f"  {kind:{width}}  {files:7d} files  {_size(nbytes):>9}")
    if not usage:
        click.echo("  (empty)")
    limit = _size(cap) if cap > 0 else "none"
    click.echo(f"{' + '.join(cache.KINDS)}: {_size(counted)} of a {limit} cap (RESEQ_CACHE_MAX)")


@cache_group.command("clear")
@click.option("--all", "everything", is_flag=True,
              help="Also remove the fetched assets and converted LPIPS weights.")
def clear_cmd(everything: bool) -> None:
    """Remove cached features, distance matrices and DAE embeddings (only files reseq wrote)."""
    from .. import cache

    try:
        files, nbytes = cache.clear(assets=everything)
    except OSError as exc:
        raise ReseqError(f"cannot clear the cache at {cache.root()}: {exc.strerror or exc}") from None
    what = ", ".join(cache.KINDS) + (" and assets" if everything else "")
    click.echo(f"removed {files} cached files ({_size(nbytes)}) of {what} from {cache.root()}")
