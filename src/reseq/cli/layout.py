"""``reseq layout | subsequences``: browsing a collection (paper §5.4 and §6).

``reseq layout`` draws every frame of SOURCE where :func:`reseq.layout` places it (a serpentine
strip of the Hamiltonian path, spokes from a centre frame, a grid, the spanning tree) as a PNG,
an SVG or an HTML page with each frame's label as its tooltip, and prints the layout's
neighbourhood score against a random arrangement.

``reseq subsequences`` finds smooth sub-clips of a given length in a long video or a folder
(:func:`reseq.subsequences`) and writes each as its own MP4, GIF or PNG folder, with an
``index.json`` that lists them; ``--min-gap`` keeps them apart in SOURCE time.

Both load SOURCE and measure distances with the same options as ``reseq order``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import click
import numpy as np

from ..errors import ReseqError
from . import main
from .sequence import _frame_options, _orient, _Run

__all__ = ["layout_cmd", "subsequences_cmd"]


@main.command("layout")
@click.argument("source")
@click.option("--style", type=click.Choice(["linear", "radial", "grid", "mst"]),
              default="linear", show_default=True,
              help="linear: the smoothest order as a serpentine strip; radial: smooth spokes "
                   "from a centre frame; grid: similar frames in neighbouring cells; mst: the "
                   "minimum spanning tree.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="layout.png, layout.svg or layout.html (thumbnails with label tooltips).")
@click.option("--thumb", type=click.IntRange(min=4), default=96, show_default=True,
              help="Thumbnail long edge in pixels (PNGs shrink it to stay within 8192 px).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False),
              help="Also write each frame's place (x, y in [0, 1], y down; row, column) as JSON.")
@_frame_options
def layout_cmd(source: str, style: str, output: str, thumb: int, json_path: str | None,
               **o) -> None:
    """Lay out the frames of SOURCE so that similar frames sit together (paper Figs. 9, 10).

    \b
    Example: reseq layout sample:cards --style linear -o cards.png
    """
    from .._util import Output, check_output_paths
    from ..layouts import layout, random_score
    from ..render import layout_picture

    if Path(output).suffix.lower() not in (".png", ".svg", ".html", ".htm"):
        raise ReseqError(f"cannot tell what to write for {output!r}: use .png, .svg or .html")
    check_output_paths([Output(output, "-o"), Output(json_path, "--json")], sources=[source],
                       force=o["force"])
    run = _Run("layout", source, o)
    run.load(solver=style == "linear")
    h, w = run.frames.array.shape[1:3]
    t = time.perf_counter()
    lay = layout(run.D, style, seed=o["seed"], aspect=w / h)
    run.notes.append(f"{style} layout in {time.perf_counter() - t:.1f} s"
                     + (f", {lay.grid_shape[0]} x {lay.grid_shape[1]} cells"
                        if lay.grid_shape else ""))
    rnd = random_score(run.D)
    run.notes.append(f"neighbourhood score (mean distance between neighbours; lower is better): "
                     f"{lay.score:.4g}, random arrangement {rnd:.4g}")
    labels = run.frames.labels
    written = [(layout_picture(output, lay, run.frames.array, labels, thumb=thumb,
                               force=o["force"], title=f"{style} layout of {source}"),
                f"{style} layout")]
    if json_path:
        from .._util import atomic_path

        recs = []
        for i in range(len(labels)):
            r = {"index": i, "label": labels[i], "source_index": int(run.src[i]),
                 "x": float(lay.positions[i, 0]), "y": float(lay.positions[i, 1])}
            if lay.cells is not None:
                r["row"], r["column"] = int(lay.cells[i, 0]), int(lay.cells[i, 1])
            recs.append(r)
        doc = {"style": style, "score": lay.score, "random_score": rnd,
               "edges": [list(e) for e in lay.edges], "frames": recs}
        with atomic_path(json_path, o["force"]) as tmp:
            tmp.write_text(json.dumps(doc, indent=1))
        written.append((Path(json_path), "places"))
    click.echo(f"reseq layout: {run.n_loaded} frames in from {source}")
    for note in run.notes:
        click.echo(f"  {note}")
    for p, what in written:
        click.echo(f"  wrote {p} ({what})")
    click.echo(f"  done in {time.perf_counter() - run.t0:.1f} s")


_EXT = {"mp4": ".mp4", "gif": ".gif", "png": "/"}


@main.command("subsequences")
@click.argument("source")
@click.option("--length", required=True, type=click.IntRange(min=2),
              help="Frames in each sub-clip.")
@click.option("--count", type=click.IntRange(min=1), default=10, show_default=True,
              help="Sub-clips wanted (fewer when no more fit the rules).")
@click.option("--objective", type=click.Choice(["sum", "max"]), default="sum",
              show_default=True, help="Minimise the sum or the largest of the steps.")
@click.option("--overlap", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Largest fraction of frames two sub-clips may share.")
@click.option("--min-gap", type=click.IntRange(min=0),
              help="Frames within G SOURCE frames of a chosen sub-clip are not used again "
                   "(sub-clips then share no frames).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Output folder: clip_00.mp4 ... and index.json.")
@click.option("--format", "fmt", type=click.Choice(["mp4", "gif", "png"]), default="mp4",
              show_default=True, help="Each sub-clip as an MP4, a GIF or a folder of PNGs.")
@click.option("--fps", type=float, default=12.0, show_default=True,
              help="Frames per second of the sub-clips.")
@_frame_options
def subsequences_cmd(source: str, length: int, count: int, objective: str, overlap: float,
                     min_gap: int | None, output: str, fmt: str, fps: float, **o) -> None:
    """Find smooth sub-clips of LENGTH frames in SOURCE and write each one (paper §6).

    \b
    Example: reseq subsequences sample:bunny --length 16 --count 4 --min-gap 10 -o clips/
    """
    from .._util import Output, atomic_path, check_output_paths
    from ..render import _is_reseq_png, check_outputs, write_sequence
    from ..sequences import subsequences

    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ReseqError(f"{out} is a file; -o needs a folder")
    names = [f"clip_{k:02d}{_EXT[fmt]}" for k in range(count)]
    if not fps > 0:
        raise ReseqError(f"--fps must be positive, got {fps:g}")
    targets = [os.path.join(output, name) for name in names]  # keeps a PNG folder's "/"
    files = (*(name.rstrip("/") for name in names), "index.json")

    def own(entry: Path) -> bool:  # a sub-clip of an earlier run, in any format or count
        if entry.is_symlink() or not re.fullmatch(r"clip_\d{2,}(\.mp4|\.gif)?", entry.name):
            return False
        if entry.is_dir():
            return all(_is_reseq_png(f) for f in entry.iterdir())
        return entry.suffix != "" and entry.is_file()

    check_output_paths([Output(out, "-o", folder=True, names=files, own=own)],
                       sources=[source], force=o["force"])
    for target in targets:
        check_outputs(target, force=o["force"], fps=fps)
    run = _Run("subsequences", source, o)
    run.load()
    n = len(run.D)
    if length > n:
        raise ReseqError(f"--length {length} is more than the {n} frames of {source}")
    t = time.perf_counter()
    from ..graph import order

    # the Hamiltonian path's windows join the search: never worse than the best of them
    path = order(run.D, seed=o["seed"]).order
    if min_gap is None:
        found = subsequences(run.D, length, count, objective, overlap, o["seed"], path=path)
    else:
        found = []
        banned = np.zeros(n, dtype=bool)
        order_src = run.src
        while len(found) < count and (~banned).sum() >= length:
            best = subsequences(run.D, length, 1, objective, overlap, o["seed"], path=path,
                                exclude=banned)
            if not best:
                break
            found.append(best[0])
            used = order_src[best[0].frames]
            near = (np.abs(order_src[:, None] - used[None, :]) <= min_gap).any(axis=1)
            banned |= near
    run.notes.append(f"{len(found)} sub-clips of {length} frames ({objective} of steps"
                     + (f", at most {overlap:g} shared" if min_gap is None else
                        f", {min_gap} source frames apart") + f") in {time.perf_counter() - t:.1f} s")
    clips = []
    written: list[tuple[Path | str, str]] = []
    for k, s in enumerate(found):
        seq = _orient(run, s.frames, closed=False)
        steps = run.D[seq[:-1], seq[1:]]
        labels = [run.frames.labels[i] for i in seq]
        dists = [float(x) for x in steps] + [None]
        extra = [{"source_index": int(run.src[i])} for i in seq]
        path = write_sequence(targets[k], run.frames.array[seq], labels, dists, fps=fps,
                              force=o["force"], extra=extra)[0]
        clips.append({"rank": k, "file": names[k].rstrip("/"), "cost": s.cost,
                      "sum_of_steps": float(steps.sum()), "largest_step": float(steps.max()),
                      "frames": [{"label": lab, **e} for lab, e in zip(labels, extra)]})
        src = run.src[seq]
        written.append((path, f"{len(seq)} frames, cost {s.cost:.4g}, source frames "
                              f"{int(src.min())}-{int(src.max())}"))
    index = out / "index.json"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"source": source, "length": length, "objective": objective, "overlap": overlap,
           "min_gap": min_gap, "clips": clips}
    with atomic_path(index, o["force"]) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    written.append((index, "index"))
    click.echo(f"reseq subsequences: {run.n_loaded} frames in from {source}, "
               f"{len(found)} sub-clips out")
    for note in run.notes:
        click.echo(f"  {note}")
    for p, what in written:
        click.echo(f"  wrote {p} ({what})")
    click.echo(f"  done in {time.perf_counter() - run.t0:.1f} s")
