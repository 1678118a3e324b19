"""Loops of any length from a Hamiltonian cycle, and cycles over subsets of frames.

* :func:`chain_loop` repeats a cycle (keeping its rotation) to exactly ``n_frames`` frames;
* :func:`sample_cycle` picks ``m`` frames spread uniformly around a cycle (paper Figure 3),
  either by **arc length** (cumulative perceptual distance along the loop, the default: equal
  perceptual change between the picked frames) or by **index** (every ``len/m``-th frame);
* :func:`subset_loop` is the shortest cycle over a subset of the frames (after outlier removal,
  or frames the user lists), returned in the original frame indices.

>>> chain_loop([2, 0, 1], 7).tolist()
[2, 0, 1, 2, 0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ReseqError
from .graph.tsp import Path, _make_path, check_distance_matrix, loop

__all__ = ["chain_loop", "sample_cycle", "subset_loop"]


def _as_cycle(cycle) -> np.ndarray:
    c = np.asarray(cycle.order if isinstance(cycle, Path) else cycle)
    if c.ndim != 1 or len(c) == 0:
        raise ReseqError("a cycle must be a non-empty list of frame indices")
    if not np.issubdtype(c.dtype, np.integer):
        raise ReseqError("a cycle must hold integer frame indices")
    return c.astype(np.intp)


def chain_loop(cycle, n_frames: int) -> np.ndarray:
    """Repeat ``cycle`` (indices or a :class:`~reseq.graph.Path`) to exactly ``n_frames``."""
    c = _as_cycle(cycle)
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 1:
        raise ReseqError(f"the number of frames must be a positive integer, got {n_frames!r}")
    reps = -(-int(n_frames) // len(c))
    return np.tile(c, reps)[: int(n_frames)]


def sample_cycle(cycle, D, m: int, by: str = "arclength") -> np.ndarray:
    """``m`` frames of ``cycle`` spread uniformly around it (paper Figure 3).

    ``by="arclength"`` (default) places ``m`` equally spaced marks on the cumulative distance
    around the closed loop, starting at ``cycle[0]``, and takes the frame nearest to each mark
    (by distance along the loop); ``by="index"`` takes frames ``round(i * len(cycle) / m)``.
    Picked frames keep the cycle's order and are distinct, so ``m <= len(cycle)``.

    >>> import numpy as np
    >>> D = np.ones((6, 6)) - np.eye(6)
    >>> sample_cycle([0, 1, 2, 3, 4, 5], D, 3).tolist()
    [0, 2, 4]
    """
    c = _as_cycle(cycle)
    L = len(c)
    if isinstance(m, bool) or int(m) != m or not 1 <= m <= L:
        raise ReseqError(f"can sample between 1 and {L} frames from this cycle, got {m!r}")
    m = int(m)
    if by == "index":
        idx = np.round(np.arange(m) * L / m).astype(np.intp)
        return c[np.minimum(idx, L - 1)]
    if by != "arclength":
        raise ReseqError(f"by must be 'arclength' or 'index', got {by!r}")
    A = check_distance_matrix(D, 1)
    if c.max() >= len(A) or c.min() < 0:
        raise ReseqError("the cycle refers to frames outside the distance matrix")
    steps = A[c, np.roll(c, -1)]
    total = float(steps.sum())
    if total <= 0.0:
        return sample_cycle(c, A, m, by="index")
    s = np.concatenate(([0.0], np.cumsum(steps)[:-1]))  # arc position of each frame
    marks = np.arange(m) * total / m
    # nearest frame to each mark, then make picks distinct and increasing
    j = np.searchsorted(s, marks, side="left")
    j = np.clip(j, 0, L - 1)
    jm = np.clip(j - 1, 0, L - 1)
    pick = np.where(np.abs(s[jm] - marks) <= np.abs(s[j] - marks), jm, j)
    out = []
    last = -1
    for i, p in enumerate(pick):
        lo = last + 1
        hi = L - (m - i)  # leave room for the remaining picks
        p = int(min(max(p, lo), hi))
        out.append(p)
        last = p
    return c[np.asarray(out, dtype=np.intp)]


def subset_loop(D, subset: Sequence[int], seed: int = 0,
                time_budget: float | None = None, effort: float = 1.0) -> Path:
    """The shortest cycle over the frames ``subset`` (original indices in ``.order``);
    ``seed``, ``time_budget`` and ``effort`` as in :func:`reseq.graph.loop`.

    >>> import numpy as np
    >>> x = np.arange(8.0)
    >>> D = np.abs(x[:, None] - x[None, :])
    >>> subset_loop(D, [1, 3, 6, 7]).order.tolist()
    [1, 3, 6, 7]
    """
    A = check_distance_matrix(D, 1)
    sub = np.asarray(list(subset))
    if sub.ndim != 1 or not (len(sub) == 0 or np.issubdtype(sub.dtype, np.integer)):
        raise ReseqError("the subset must be a list of frame indices")
    sub = sub.astype(np.intp)
    if len(np.unique(sub)) != len(sub):
        raise ReseqError("the subset lists a frame more than once")
    if len(sub) < 3:
        raise ReseqError(f"a loop needs at least 3 frames, the subset has {len(sub)}")
    if sub.min() < 0 or sub.max() >= len(A):
        raise ReseqError(f"the subset refers to frames outside 0..{len(A) - 1}")
    p = loop(A[np.ix_(sub, sub)], seed=seed, time_budget=time_budget, effort=effort)
    return _make_path(A, sub[p.order], closed=True)
