"""``reseq distances SOURCE -o D.npy``: the N x N distance matrix and the frame labels."""

from __future__ import annotations

import json
import time

import click
import numpy as np

from . import main
from .assets import SIZE
from .sequence import Real

__all__ = ["distances_cmd"]


@main.command("distances")
@click.argument("source")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the matrix (.npy); the labels go beside it as .labels.json.")
@click.option("--metric", type=click.Choice(["lpips", "cosine", "l2"]), default="lpips",
              show_default=True, help="LPIPS (eq. 1), cosine of deep features (eq. 11), pixel L2 (eq. 8).")
@click.option("--net", type=click.Choice(["alex", "vgg"]), default="alex", show_default=True)
@click.option("--size", type=SIZE, default="256", show_default=True,
              help="Working long edge in pixels (at most: smaller frames keep their size unless "
                   "--upscale), or 'native'.")
@click.option("--upscale", is_flag=True,
              help="Scale frames smaller than --size up to it (default: never upscale).")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Keep every k-th frame.")
@click.option("--start", "start_time", type=Real(min=0), default=None,
              help="Video start time (s).")
@click.option("--end", "end_time", type=Real(min=0), default=None, help="Video end time (s).")
@click.option("--max-frames", type=click.IntRange(min=2), default=None,
              help="Keep at most this many frames.")
@click.option("--memory", type=Real(min=0, min_open=True), default=4.0, show_default=True,
              help="Memory budget for features in GB; larger sets stream through disk.")
@click.option("--no-cache", is_flag=True, help="Do not keep deep features on disk for reuse.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto",
              show_default=True,
              help="Where the networks run and the Gram matrix is multiplied (auto: a GPU when "
                   "there is one; equal to the CPU's to float32 rounding).")
def distances_cmd(source: str, output: str, metric: str, net: str, size: int | None,
                  upscale: bool, every: int, start_time: float | None, end_time: float | None,
                  max_frames: int | None, memory: float, no_cache: bool, force: bool,
                  device: str = "auto") -> None:
    """Write the distance matrix of SOURCE's frames (float64 .npy, rows in frame order)."""
    from .._util import Output, atomic_path, check_memory, check_output_paths
    from ..distances import distance_matrix
    from ..errors import ReseqError
    from ..frames import load_frames

    if not output.endswith(".npy"):
        raise ReseqError(f"output must end in .npy, got {output!r}")
    labels_path = output[: -len(".npy")] + ".labels.json"
    check_output_paths([Output(output, "-o"), Output(labels_path, "-o (labels)")],
                       sources=[source], force=force)
    t0 = time.perf_counter()
    frames = load_frames(source, size=size, every=every, start=start_time, end=end_time,
                         max_frames=max_frames, upscale=upscale)
    n = len(frames)
    check_memory(3 * 8 * n * n, f"the {n:,} x {n:,} distance matrix")
    try:
        dist = distance_matrix(frames, metric=metric, net=net,
                               memory_budget=int(memory * 1024**3),
                               cache=False if no_cache else None, device=device)
    except ReseqError as exc:
        if ("too small" in str(exc) and not upscale and size is not None
                and max(frames.width, frames.height) < size):
            raise ReseqError(f"frames of {frames.width}x{frames.height} px (their native size) "
                             f"are too small for {net}; add --upscale to scale them up to "
                             f"--size {size}") from None
        raise
    with atomic_path(output, force) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, dist)
    with atomic_path(labels_path, force) as tmp:
        tmp.write_text(json.dumps({"source": str(source), "metric": metric,
                                   "net": net if metric != "l2" else None,
                                   "size": [frames.width, frames.height],
                                   "labels": frames.labels}, indent=1))
    off = dist[~np.eye(len(dist), dtype=bool)]
    click.echo(f"{len(frames)} frames at {frames.width}x{frames.height}, {metric}"
               f"{'' if metric == 'l2' else '/' + net}: distances {off.min():.4g}..{off.max():.4g}"
               f" (median {np.median(off):.4g}) in {time.perf_counter() - t0:.1f}s")
    click.echo(f"wrote {output} and {labels_path}")
