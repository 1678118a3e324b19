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

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ReseqError
from .graph.tsp import Path, _make_path, check_distance_matrix, loop

__all__ = [
    "EXACT_SEQUENCES",
    "Subsequence",
    "chain_loop",
    "sample_cycle",
    "sample_evenly",
    "subsequences",
    "subset_loop",
]


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


def sample_evenly(seq, D, m: int, closed: bool = False) -> np.ndarray:
    """``m`` frames of the sequence ``seq`` at even perceptual arc length along it.

    The arc position of each frame is the cumulative distance from ``seq[0]``; ``m`` equally
    spaced marks are placed on it and the frame nearest each mark is taken. A path
    (``closed=False``) spreads the marks from its first to its last frame, both included; a
    cycle (``closed=True``) spreads them around the closed loop (the closing step counts),
    starting at ``seq[0]``. Picked frames keep the sequence's order and are distinct, so
    ``m <= len(seq)``. A sequence of zero length (all steps 0) is sampled by index.

    >>> import numpy as np
    >>> x = np.array([0.0, 1.0, 1.5, 2.0, 4.0, 8.0])
    >>> D = np.abs(x[:, None] - x[None, :])
    >>> sample_evenly([0, 1, 2, 3, 4, 5], D, 3).tolist()   # marks at 0, 4, 8
    [0, 4, 5]
    """
    c = _as_cycle(seq)
    L = len(c)
    if isinstance(m, bool) or int(m) != m or not 1 <= m <= L:
        raise ReseqError(f"can sample between 1 and {L} frames from this sequence, got {m!r}")
    m = int(m)
    A = check_distance_matrix(D, 1)
    if c.max() >= len(A) or c.min() < 0:
        raise ReseqError("the sequence refers to frames outside the distance matrix")
    steps = A[c, np.roll(c, -1)] if closed else A[c[:-1], c[1:]]
    total = float(steps.sum())
    if total <= 0.0:
        idx = (np.arange(m) * L / m) if closed else np.linspace(0, L - 1, m)
        return c[_distinct_increasing(np.round(idx).astype(np.intp), L)]
    s = np.concatenate(([0.0], np.cumsum(steps)[: L - 1]))  # arc position of each frame
    marks = np.arange(m) * total / m if closed else np.linspace(0.0, total, m)
    j = np.clip(np.searchsorted(s, marks, side="left"), 0, L - 1)
    jm = np.clip(j - 1, 0, L - 1)
    pick = np.where(np.abs(s[jm] - marks) <= np.abs(s[j] - marks), jm, j)
    return c[_distinct_increasing(pick, L)]


def _distinct_increasing(pick: np.ndarray, L: int) -> np.ndarray:
    """Nudge sorted picks so that they are strictly increasing within 0..L-1."""
    m = len(pick)
    out = np.empty(m, dtype=np.intp)
    last = -1
    for i, p in enumerate(pick):
        p = int(min(max(int(p), last + 1), L - (m - i)))  # leave room for the remaining picks
        out[i] = p
        last = p
    return out


def sample_cycle(cycle, D, m: int, by: str = "arclength") -> np.ndarray:
    """``m`` frames of ``cycle`` spread uniformly around it (paper Figure 3).

    ``by="arclength"`` (default) is :func:`sample_evenly` on the closed loop: equally spaced
    marks on the cumulative distance around the loop, starting at ``cycle[0]``, and the frame
    nearest each mark; ``by="index"`` takes frames ``round(i * len(cycle) / m)``.
    Picked frames keep the cycle's order and are distinct, so ``m <= len(cycle)``.

    >>> import numpy as np
    >>> D = np.ones((6, 6)) - np.eye(6)
    >>> sample_cycle([0, 1, 2, 3, 4, 5], D, 3).tolist()
    [0, 2, 4]
    """
    c = _as_cycle(cycle)
    L = len(c)
    if by == "arclength":
        return sample_evenly(c, D, m, closed=True)
    if isinstance(m, bool) or int(m) != m or not 1 <= m <= L:
        raise ReseqError(f"can sample between 1 and {L} frames from this cycle, got {m!r}")
    if by != "index":
        raise ReseqError(f"by must be 'arclength' or 'index', got {by!r}")
    idx = np.round(np.arange(int(m)) * L / int(m)).astype(np.intp)
    return c[np.minimum(idx, L - 1)]


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


# ---------------------------------------------------------------------------------------------
# smooth sub-sequences (paper §5.4 and §6: "continuous subsequences of a given length with a
# minimum perceptual distance between adjacent frames")


@dataclass
class Subsequence:
    """A smooth sub-sequence: ``frames`` (indices, in playing order), ``steps`` (the distances
    between consecutive frames, ``len(frames) - 1`` of them) and ``cost`` (their sum, or their
    largest for ``objective="max"``)."""

    frames: np.ndarray
    cost: float
    steps: np.ndarray

    @property
    def total(self) -> float:
        """The sum of the steps (whatever the objective)."""
        return float(self.steps.sum())


#: Exhaustive search when the number of ordered candidate sequences is at most this.
EXACT_SEQUENCES = 400_000


def _keys(A: np.ndarray, P: np.ndarray, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """(primary, secondary) cost of each row of ``P``: (sum, max) or (max, sum)."""
    if P.shape[1] < 2:
        z = np.zeros(len(P))
        return z, z
    st = A[P[:, :-1], P[:, 1:]]
    total, top = st.sum(axis=1), st.max(axis=1)
    return (total, top) if objective == "sum" else (top, total)


def _canonical(P: np.ndarray) -> np.ndarray:
    """Each path read from its smaller end (a path and its reverse are the same sequence)."""
    flip = P[:, 0] > P[:, -1]
    out = P.copy()
    out[flip] = P[flip, ::-1]
    return out


def _rank(A, P, objective):
    P = np.unique(_canonical(P), axis=0)
    k1, k2 = _keys(A, P, objective)
    o = np.lexsort((k2, k1))
    return P[o], k1[o], k2[o]


def _enumerate(n: int, length: int) -> np.ndarray:
    import itertools

    flat = np.fromiter(itertools.chain.from_iterable(itertools.permutations(range(n), length)),
                       dtype=np.intp)
    P = flat.reshape(-1, length)
    return P[P[:, 0] < P[:, -1]] if length > 1 else P


def _neighbours(A: np.ndarray, k: int) -> np.ndarray:
    """Each frame's ``k`` nearest other frames, nearest first, ties to the lower index (so the
    first of them not yet used is exactly what ``np.argmin`` over the rest would pick)."""
    n = len(A)
    k = min(k, n - 1)
    B = A.copy()
    np.fill_diagonal(B, np.inf)
    kth = np.partition(B, k - 1, axis=1)[:, k - 1] if k < n - 1 else np.full(n, np.inf)
    mask = B <= kth[:, None]
    counts = mask.sum(axis=1)
    out = np.empty((n, k), dtype=np.intp)
    plain = np.flatnonzero(counts == k)
    if len(plain):
        cols = np.nonzero(mask[plain])[1].reshape(len(plain), k)  # ascending column index
        vals = np.take_along_axis(B[plain], cols, axis=1)
        o = np.argsort(vals, axis=1, kind="stable")
        out[plain] = np.take_along_axis(cols, o, axis=1)
    for r in np.flatnonzero(counts != k):  # ties at the k-th distance (or k = n - 1)
        cols = np.flatnonzero(mask[r]) if np.isfinite(kth[r]) else np.arange(n)
        cols = cols[cols != r]
        out[r] = cols[np.argsort(B[r, cols], kind="stable")][:k]
    return out


def _greedy_chains(A: np.ndarray, length: int) -> np.ndarray:
    """The greedy nearest-neighbour chain of ``length`` frames from every start frame (each step
    to the nearest frame not yet in the chain, ties to the lower index: ``np.argmin``'s rule)."""
    n = len(A)
    nb = _neighbours(A, length)  # the nearest unvisited frame is among the `length` nearest
    P = np.empty((n, length), dtype=np.intp)
    P[:, 0] = np.arange(n)
    rows = np.arange(n)
    for j in range(1, length):
        cand = nb[P[:, j - 1]]  # (n, length)
        seen = (cand[:, :, None] == P[:, None, :j]).any(axis=2)
        first = np.argmax(~seen, axis=1)
        P[:, j] = cand[rows, first]
    return P


def _windows(path: np.ndarray, length: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(path, length).copy()


def _beam(A: np.ndarray, nb: np.ndarray, length: int, objective: str, per_end: int) -> np.ndarray:
    """Paths of ``length`` frames grown one frame at a time along nearest-neighbour lists,
    keeping the ``per_end`` cheapest partial paths ending at each frame (a dynamic programme
    over (length, last frame) that remembers its paths so that frames never repeat)."""
    n = len(A)
    P = np.arange(n, dtype=np.intp)[:, None]
    c1 = np.zeros(n)
    c2 = np.zeros(n)
    k = nb.shape[1]
    for _ in range(1, length):
        cand = nb[P[:, -1]].reshape(-1)
        parent = np.repeat(np.arange(len(P)), k)
        ok = ~(P[parent] == cand[:, None]).any(axis=1)
        cand, parent = cand[ok], parent[ok]
        step = A[P[parent, -1], cand]
        if objective == "sum":
            n1, n2 = c1[parent] + step, np.maximum(c2[parent], step)
        else:
            n1, n2 = np.maximum(c1[parent], step), c2[parent] + step
        o = np.lexsort((n2, n1, cand))
        ends = cand[o]
        start = np.searchsorted(ends, ends, side="left")
        keep = o[(np.arange(len(o)) - start) < per_end]
        P = np.concatenate([P[parent[keep]], cand[keep, None]], axis=1)
        c1, c2 = n1[keep], n2[keep]
    return P


def _moves(P: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Neighbouring sequences of the path ``P`` (1-D): every segment reversal (2-opt, ends
    included), every frame replaced by a near neighbour of its neighbours from outside the
    path, and the path shifted: one end dropped and a near neighbour of the other end added."""
    L = len(P)
    out = []
    if L >= 2:
        i, k = np.triu_indices(L, 1)
        R = np.repeat(P[None], len(i), axis=0)
        pos = np.arange(L)
        src = np.where((pos >= i[:, None]) & (pos <= k[:, None]), i[:, None] + k[:, None] - pos,
                       pos)
        out.append(np.take_along_axis(R, src, axis=1))
    inside = set(P.tolist())
    for p in range(L):
        near = set()
        if p > 0:
            near.update(nb[P[p - 1]].tolist())
        if p < L - 1:
            near.update(nb[P[p + 1]].tolist())
        ws = [w for w in near if w not in inside]
        if ws:
            R = np.repeat(P[None], len(ws), axis=0)
            R[:, p] = ws
            out.append(R)
    if L >= 2:
        for w in nb[P[-1]]:
            if w not in inside or w == P[0]:
                out.append(np.concatenate([P[1:], [w]])[None])
        for w in nb[P[0]]:
            if w not in inside or w == P[-1]:
                out.append(np.concatenate([[w], P[:-1]])[None])
    return np.concatenate(out) if out else P[None]


def _improve(A, P, nb, objective, allowed, max_rounds: int = 200):
    """Best-improvement local search over :func:`_moves`; ``allowed(R)`` masks admissible rows."""
    k1, k2 = _keys(A, P[None], objective)
    best = (float(k1[0]), float(k2[0]))
    for _ in range(max_rounds):
        R = _moves(P, nb)
        R = R[allowed(R)]
        if not len(R):
            break
        r1, r2 = _keys(A, R, objective)
        j = int(np.lexsort((r2, r1))[0])
        cand = (float(r1[j]), float(r2[j]))
        tol = 1e-12 * max(abs(best[0]), 1.0)
        if cand[0] < best[0] - tol or (cand[0] <= best[0] + tol and cand[1] < best[1] - tol):
            P, best = R[j], cand
        else:
            break
    return P, best


def subsequences(D, length: int, count: int = 10, objective: str = "sum",
                 overlap: float = 0.5, seed: int = 0, *, path=None,
                 exclude=None, neighbours: int | None = None,
                 per_end: int = 3) -> list[Subsequence]:
    """Up to ``count`` smooth sequences of exactly ``length`` distinct frames, best first.

    Each minimises the sum (``objective="sum"``) or the largest (``"max"``, ties broken by the
    sum) of the distances between its adjacent frames: paper §5.4's "continuous subsequences of
    a given length with a minimum perceptual distance between adjacent frames", a min-cost
    k-path problem (NP-hard). They are chosen greedily: the best sequence, then the best that
    shares at most ``floor(overlap * length)`` frames (and never all of them) with every one
    already chosen, and so on; fewer than ``count`` come back when no more fit the rule.

    *Exact* when the candidate sequences can be listed (``N! / (N - length)!`` at most
    :data:`EXACT_SEQUENCES`, e.g. every length at N <= 9): all are ranked. Otherwise a
    heuristic, measured in ``benchmarks/layouts.py``: a beam search (a dynamic programme over
    (length, last frame) keeping the ``per_end`` cheapest partial paths ending at each frame,
    growing along each frame's ``neighbours`` nearest frames; by default
    ``clamp(512000 / (N * length), 10, 40)``, so that small collections searched for long
    sequences get wide lists and large ones stay fast), pooled with the greedy
    nearest-neighbour chain from every start frame and, when ``path`` (e.g.
    ``reseq.order(D).order``) is given, every window of ``length`` consecutive frames of it;
    then each pick is polished by best-improvement local search (segment reversals, frames
    swapped for outside neighbours, shifts). The best sequence is therefore never worse than
    the best greedy chain, nor, when ``path`` is given, than the best window along it.

    ``exclude``: a boolean mask or index list of frames that may not be used. ``seed`` is
    accepted for the API's uniformity: the search is deterministic.

    >>> import numpy as np
    >>> x = np.array([0.0, 10.0, 1.0, 11.0, 2.0, 30.0])
    >>> D = np.abs(x[:, None] - x[None, :])
    >>> best = subsequences(D, 3, count=2, overlap=0.0)
    >>> [(s.frames.tolist(), s.cost) for s in best]
    [([0, 2, 4], 2.0), ([1, 3, 5], 20.0)]
    """
    A = check_distance_matrix(D, 1)
    n = len(A)
    if objective not in ("sum", "max"):
        raise ReseqError(f"objective must be 'sum' or 'max', got {objective!r}")
    if isinstance(length, bool) or int(length) != length or length < 1:
        raise ReseqError(f"length must be a positive integer, got {length!r}")
    if isinstance(count, bool) or int(count) != count or count < 1:
        raise ReseqError(f"count must be a positive integer, got {count!r}")
    if not 0.0 <= float(overlap) <= 1.0:
        raise ReseqError(f"overlap must be between 0 and 1, got {overlap!r}")
    length, count = int(length), int(count)
    usable = np.ones(n, dtype=bool)
    if exclude is not None:
        ex = np.asarray(exclude)
        if ex.dtype == bool:
            if ex.shape != (n,):
                raise ReseqError(f"exclude mask must have {n} entries, got {ex.shape}")
            usable &= ~ex
        elif len(ex):
            usable[ex.astype(np.intp)] = False
    idx = np.flatnonzero(usable)
    if length > len(idx):
        raise ReseqError(f"length {length} is more than the {len(idx)} frames available")
    shared_max = min(int(np.floor(float(overlap) * length + 1e-9)), length - 1)
    sub = A[np.ix_(idx, idx)]
    m = len(idx)
    if math.perm(m, length) <= EXACT_SEQUENCES:
        P, _, _ = _rank(sub, _enumerate(m, length), objective)
        picks = _select(P, count, shared_max, m)
    else:
        picks = _heuristic(sub, length, count, objective, shared_max, path, idx,
                           neighbours, per_end)
    out = []
    for P in picks:
        frames = idx[P]
        if len(frames) > 1 and frames[0] > frames[-1]:
            frames = frames[::-1]
        steps = A[frames[:-1], frames[1:]]
        cost = float(steps.sum()) if objective == "sum" else float(steps.max(initial=0.0))
        out.append(Subsequence(frames.copy(), cost, steps))
    out.sort(key=lambda s: (s.cost, s.total, s.frames.tolist()))
    return out


def _select(P: np.ndarray, count: int, shared_max: int, n: int) -> list[np.ndarray]:
    """Greedy picks from ranked rows ``P``: each shares <= ``shared_max`` frames with every
    earlier pick."""
    picks: list[np.ndarray] = []
    ok = np.ones(len(P), dtype=bool)
    while len(picks) < count:
        left = np.flatnonzero(ok)
        if not len(left):
            break
        row = P[left[0]]
        picks.append(row)
        mask = np.zeros(n, dtype=bool)
        mask[row] = True
        ok &= mask[P].sum(axis=1) <= shared_max
    return picks


def _heuristic(A, length, count, objective, shared_max, path, idx, neighbours, per_end):
    n = len(A)
    if neighbours is None:
        neighbours = int(np.clip(512_000 // (n * length), 10, 40))
    nb = _neighbours(A, max(1, min(neighbours, n - 1)))
    pools = [_beam(A, nb, length, objective, per_end), _greedy_chains(A, length)]
    if path is not None:
        where = np.full(int(idx.max()) + 1, -1)
        where[idx] = np.arange(n)
        p = np.asarray(path.order if isinstance(path, Path) else path, dtype=np.intp)
        p = where[p[(p >= 0) & (p < len(where))]]
        p = p[p >= 0]  # windows of the path over the usable frames, in its order
        if len(p) >= length:
            pools.append(_windows(p, length))
    P, _, _ = _rank(A, np.concatenate(pools), objective)
    masks: list[np.ndarray] = []

    def allowed(R: np.ndarray) -> np.ndarray:
        ok = np.ones(len(R), dtype=bool)
        for mk in masks:
            ok &= mk[R].sum(axis=1) <= shared_max
        return ok

    picks: list[np.ndarray] = []
    tries = 3  # polish this many of the best admissible pooled candidates for each pick
    while len(picks) < count:
        cand = P[allowed(P)][:tries]
        if not len(cand):
            break
        best = None
        for row in cand:
            r, key = _improve(A, row, nb, objective, allowed)
            if best is None or key < best[1]:
                best = (r, key)
        assert best is not None
        picks.append(best[0])
        mk = np.zeros(n, dtype=bool)
        mk[best[0]] = True
        masks.append(mk)
    return picks
