"""Filling the gaps of a sequence with synthesized in-betweens.

A resequenced animation can only reuse the frames it has; where two consecutive output frames
are far apart (a long edge of a path, loop or MST in-between chain) the animation stutters.
:func:`fill_gaps` inserts VAE-interpolated frames into every step longer than a threshold, as
many as the step is long relative to the threshold (``ceil(step / threshold) - 1``, at most
``max_insert``), so that the largest step shrinks. :func:`default_gap_threshold` picks the
threshold from the distance matrix: a high quantile of the nearest-neighbour distances, i.e. a
step longer than almost every frame's step to its closest neighbour. :func:`synthesize_gaps`
wraps both and re-measures the output's steps with LPIPS for the commands' summaries.

By default the in-betweens are *composites* (``render="composite"`` of
:func:`~reseq.synth.interpolate`): the VAE decodes the slerped latent codes, and each pixel of
the new frame is taken from the real endpoint whose reconstruction the decoded in-between
resembles there. Plain decoded frames are far blurrier than real ones (LPIPS about 0.1-0.3 from
the truth, against 0.01-0.06 for a cross-fade of neighbouring frames), so inserting them
tends to *raise* the largest step; e.g. a robot walk with frames dropped, largest step 0.056:
plain VAE frames made it 0.295, residual-corrected ones (``render="residual"``) 0.030.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ReseqError
from .interpolate import interpolate

if TYPE_CHECKING:
    from .vae import VAE

__all__ = [
    "GapFilling",
    "consecutive_lpips",
    "default_gap_threshold",
    "fill_gaps",
    "gap_counts",
    "synthesize_gaps",
]


def default_gap_threshold(D: np.ndarray, q: float = 0.95) -> float:
    """The ``q`` quantile of the nearest-neighbour distances of ``D`` (diagonal ignored).

    >>> D = np.array([[0, 1, 4], [1, 0, 2], [4, 2, 0]], float)
    >>> default_gap_threshold(D, q=1.0), default_gap_threshold(D, q=0.0)
    (2.0, 1.0)
    """
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] < 2:
        raise ReseqError(f"need a square distance matrix of at least 2 x 2, got {D.shape}")
    if not 0.0 <= q <= 1.0:
        raise ReseqError(f"quantile must be in [0, 1], got {q}")
    off = D + np.diag(np.full(len(D), np.inf))
    return float(np.quantile(off.min(axis=1), q))


def gap_counts(steps: np.ndarray, threshold: float, max_insert: int = 8) -> np.ndarray:
    """How many frames :func:`fill_gaps` inserts into each step.

    >>> gap_counts(np.array([0.5, 1.0, 1.5, 3.2, 50.0]), threshold=1.0, max_insert=8).tolist()
    [0, 0, 1, 3, 8]
    """
    steps = np.asarray(steps, dtype=np.float64)
    if not threshold > 0:
        raise ReseqError(f"gap threshold must be positive, got {threshold}")
    if max_insert < 0:
        raise ReseqError(f"max_insert must be >= 0, got {max_insert}")
    counts = [min(max_insert, max(0, math.ceil(s / threshold - 1e-12) - 1)) if s > threshold else 0
              for s in steps]
    return np.array(counts, dtype=int)


def fill_gaps(images: np.ndarray, steps: np.ndarray, model: VAE, threshold: float,
              max_insert: int = 8, method: str = "slerp", render: str = "composite",
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Insert decoded in-betweens wherever a step exceeds ``threshold``.

    ``images`` is ``(M, H, W, 3)`` uint8 in output order, ``steps`` the ``M - 1`` distances
    between consecutive frames (for a loop, append the last-to-first step and the wrap-around
    gap is filled after the last frame). Returns ``(new_images, synthetic_mask,
    inserted_per_gap)``; the real frames are kept unchanged, the new ones are decoded at
    ``(H, W)`` by :func:`~reseq.synth.interpolate` with ``render`` (default ``"composite"``;
    ``"decode"`` inserts the plain decoded frames, which are so much blurrier than the real
    ones that the step into and out of them is often larger than the gap they fill).

    >>> from reseq.synth.vae import VAE, VAEConfig
    >>> imgs = np.zeros((3, 16, 16, 3), np.uint8)
    >>> new, synthetic, per_gap = fill_gaps(imgs, np.array([0.1, 0.35]), VAE(VAEConfig(size=16, latent=4)), 0.1)
    >>> len(new), int(synthetic.sum()), per_gap.tolist()
    (6, 3, [0, 3])
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ReseqError(f"expected (M, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
    steps = np.asarray(steps, dtype=np.float64).ravel()
    m = len(images)
    if len(steps) not in (m - 1, m) or m < 1:
        raise ReseqError(f"{m} frames need {m - 1} steps (or {m} for a loop), got {len(steps)}")
    counts = gap_counts(steps, threshold, max_insert)
    out, mask = [], []
    hw = images.shape[1:3]
    for i in range(m):
        out.append(images[i])
        mask.append(False)
        if i < len(counts) and counts[i]:
            b = images[(i + 1) % m]
            mids = interpolate(model, images[i], b, int(counts[i]), method=method, out_hw=hw,
                               render=render)
            out.extend(mids)
            mask.extend([True] * len(mids))
    return np.stack(out), np.array(mask, dtype=bool), counts


def consecutive_lpips(images: np.ndarray, net: str = "alex", loop: bool = False) -> np.ndarray:
    """LPIPS between consecutive frames (and last-to-first when ``loop``), via the embedding.

    One network pass per frame (:func:`reseq.features.lpips_embedding`), not one per pair.
    """
    from ..features import lpips_embedding

    emb = lpips_embedding(np.asarray(images), net).astype(np.float64)
    nxt = np.roll(emb, -1, axis=0) if loop else emb[1:]
    return ((emb[:len(nxt)] - nxt) ** 2).sum(axis=1)


@dataclass
class GapFilling:
    """The result of :func:`synthesize_gaps`, with what a command's summary reports."""

    images: np.ndarray
    synthetic: np.ndarray
    inserted_per_gap: np.ndarray
    threshold: float
    largest_before: float
    largest_after: float | None
    steps_after: np.ndarray | None

    @property
    def made(self) -> int:
        """How many frames were synthesized."""
        return int(self.synthetic.sum())

    def summary(self) -> str:
        after = "n/a" if self.largest_after is None else f"{self.largest_after:.3f}"
        return (f"synthesized {self.made} frames in {int((self.inserted_per_gap > 0).sum())} "
                f"gaps (threshold {self.threshold:.3f}); largest step {self.largest_before:.3f} "
                f"-> {after}")


def synthesize_gaps(images: np.ndarray, steps: np.ndarray, model: VAE,
                    threshold: float | None = None, D: np.ndarray | None = None, q: float = 0.95,
                    max_insert: int = 8, method: str = "slerp", render: str = "composite",
                    net: str | None = "alex") -> GapFilling:
    """:func:`fill_gaps` plus what the ``--synthesize`` summaries need.

    ``threshold`` defaults to :func:`default_gap_threshold` ``(D, q)`` (``D`` is then
    required). The steps of the output are re-measured with LPIPS (``net``; ``None`` skips it)
    so the largest step after filling is in the same units as ``steps`` when those are LPIPS
    distances at the same working size. ``len(steps) == len(images)`` means a loop.
    """
    steps = np.asarray(steps, dtype=np.float64).ravel()
    if threshold is None:
        if D is None:
            raise ReseqError("synthesize_gaps needs a threshold or the distance matrix D")
        threshold = default_gap_threshold(D, q)
    new, mask, counts = fill_gaps(images, steps, model, threshold, max_insert, method, render)
    loop = len(steps) == len(images)
    after = consecutive_lpips(new, net, loop=loop) if net and len(new) > 1 else None
    return GapFilling(images=new, synthetic=mask, inserted_per_gap=counts,
                      threshold=float(threshold),
                      largest_before=float(steps.max()) if len(steps) else 0.0,
                      largest_after=None if after is None else float(after.max()),
                      steps_after=after)
