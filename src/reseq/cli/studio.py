"""``reseq studio SOURCE``: the interactive web page (see :mod:`reseq.studio`).

Loads SOURCE, starts the local server at once (the page shows progress while the distances
compute), prints exactly one line with the URL (and its token) on stdout when the collection is
ready, opens it in the browser unless ``--no-browser``, and serves until SIGINT or SIGTERM
(exit code 0).
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from pathlib import Path

import click

from ..errors import ReseqError, ReseqWarning
from . import main
from .assets import SIZE

__all__ = ["studio_cmd"]


class _Stop(Exception):
    pass


def _open_browser(url: str) -> bool:
    """Open ``url`` in the desktop's browser (at once: the page shows the progress). Not on a
    Linux machine without a display, where Python's webbrowser would start a text browser in
    this terminal."""
    import os
    import webbrowser

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    threading.Thread(target=browser.open, args=(url,), daemon=True).start()
    return True


@main.command("studio")
@click.argument("source")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback exposes your frames.")
@click.option("--no-browser", is_flag=True, help="Do not open the page in a browser.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="reseq-studio-out",
              show_default=True, help="Folder for exports (never overwritten: new names).")
@click.option("--project", type=click.Path(dir_okay=False),
              help="Reopen a project file written by an export.")
@click.option("--model", type=click.Path(dir_okay=False),
              help="VAE checkpoint: enables synthesizing in-betweens at the worst step.")
@click.option("--metric", type=click.Choice(["lpips", "cosine", "l2"]), default="lpips",
              show_default=True, help="Distance between frames.")
@click.option("--net", type=click.Choice(["alex", "vgg"]), default="alex", show_default=True,
              help="Network for lpips/cosine.")
@click.option("--size", type=SIZE, default="256", show_default=True,
              help="Working long edge in pixels, or 'native'.")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Keep every K-th frame of SOURCE.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for every random choice.")
@click.pass_context
def studio_cmd(ctx: click.Context, source: str, port: int, host: str, no_browser: bool,
               out_dir: str, project: str | None, model: str | None, **opts) -> None:
    """Open the interactive studio on SOURCE: pick key-frames on the MST map, watch them.

    \b
    Example: reseq studio sample:bunny
    """
    from .._util import Output, check_output_paths
    from ..frames import load_frames
    from ..studio import Session, StudioServer, read_project

    out = Path(out_dir)
    # exports take new names only, so the folder may hold anything but a source's frames
    check_output_paths([Output(out, "--out", folder=True, own=lambda entry: True)],
                       sources=[source, model, project], force=True)
    if model is not None and not Path(model).is_file():
        raise ReseqError(f"VAE checkpoint not found: {model}")
    state = None
    if project is not None:
        proj = read_project(project)
        for name, value in proj["settings"].items():  # the project's settings, unless given
            if name in opts and ctx.get_parameter_source(name).name == "DEFAULT":
                opts[name] = value
        state = proj["state"]
    if host not in ("127.0.0.1", "localhost", "::1"):
        warnings.warn(f"--host {host}: the studio is reachable from other machines (anyone "
                      "with the URL and its token can see your frames)", ReseqWarning,
                      stacklevel=1)
    frames = load_frames(source, size=opts["size"], every=opts["every"], progress=True)
    if len(frames) < 2:
        raise ReseqError(f"{source}: need at least 2 frames, got {len(frames)}")
    if project is not None and list(proj.get("labels", [])) != list(frames.labels):
        raise ReseqError(f"project {project} was made for other frames ({proj.get('n_frames')} "
                         f"frames) than {source} gives ({len(frames)})")
    settings = {"source": source, **opts}
    try:
        session = Session(frames, settings=settings, out_dir=out, model=model, state=state)
    except ReseqError as exc:
        raise ReseqError(f"project {project}: {exc}") from None
    server = StudioServer(session, host=host, port=port).start()
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()
        if not session.ready.is_set():
            raise _Stop

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        opened = not no_browser and _open_browser(server.url)
        try:
            session.compute(progress=True)
        except _Stop:
            return
        click.echo(f"reseq studio: {len(frames)} frames from {source} at {server.url}")
        sys.stdout.flush()
        click.echo(f"  exports go to {out}/; Ctrl+C stops the server"
                   + ("" if opened or no_browser else "; open the URL in your browser"), err=True)
        while not stop.wait(0.5):
            if not server.thread.is_alive():
                raise ReseqError("the studio server stopped unexpectedly")
    finally:
        server.stop()
        for s, h in old.items():
            signal.signal(s, h)
