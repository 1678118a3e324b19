"""Shortest Hamiltonian paths and cycles on a precomputed distance matrix.

``order(D)`` is the shortest Hamiltonian path (paper eq. 5) with free ends, a fixed start, or a
fixed start and end; ``loop(D)`` the shortest Hamiltonian cycle (eq. 6). ``D`` is any symmetric,
non-negative matrix: the triangle inequality is never assumed (LPIPS is a squared distance) and
exact zeros are real edges.

How they are solved
-------------------
* **Exact** for ``N <= EXACT_MAX`` (12) by Held–Karp dynamic programming over subsets,
  vectorised with numpy one subset size at a time.
* **Near-optimal** beyond: every path problem is a cycle problem on ``N + 1`` nodes with a dummy
  node (free ends: the dummy is at distance 0 from every frame; a fixed start ``s``: 0 to ``s``
  and ``B = 4 max(D)`` to the others; fixed ``s`` and ``t``: 0 to both, ``B`` to the others).
  No local-search move (it changes at most two real edges when it moves a dummy edge) can
  detach the dummy from ``s`` / ``t``, kicks never touch the dummy's edges, random starts put
  it there and crossover never removes one of its edges, and the result is checked (an
  ``AssertionError`` would be a bug, not bad input). The dummy's distances are a vector, so no
  ``(N + 1)^2`` matrix is built.

  The local search is 2-opt, Or-opt (segments of 1-3 frames moved next to a neighbour, both
  orientations), Or-3opt (two adjacent segments of any length swapped, or both reversed) and,
  where none of those improves, a Lin-Kernighan move (a chain of up to 20 flips, breadth 5 at
  its first level), on candidate-neighbour lists with a don't-look-bit queue. An iterated local
  search repeats: a random local 4-change kick (``x A B C y -> x C B A y`` on segments of up to
  100 frames, which no single move of the local search undoes), local search from its ends,
  kept when the tour got shorter or at most 0.3 mean steps longer, otherwise undone. The hot
  loops are numba-compiled (``reseq.graph._kernels``, cached on disk after the first run),
  release the GIL and work on the float64 distances directly.

  **The search is memetic** (a population evolved by crossover): 60 tours -- the best of the
  constructions below and 59 random tours (the dummy kept at its fixed ends) -- are each
  improved by a short iterated local search (2% of the kicks), then evolved by the edge
  assembly crossover (EAX, Nagata and Kobayashi's "single" strategy,
  :mod:`reseq.graph._eax`): in a random order every tour is crossed with the next, its best of
  30 children replaces it when shorter, until 3 generations in a row bring nothing. A
  random-start population is what makes it work: the same budget spent on two long searches
  from the best construction, or EAX between such long-searched tours, lands over three times
  further from the best known tour at N = 1000 (``benchmarks/sequencing.py``). Members and
  children run on two threads; each has its own seed and the replacements are applied in a
  fixed order, so the result does not depend on the number of cores.

  - greedy edge matching on the ``k`` nearest neighbours (Christofides-style greedy);
  - **out-and-back** tours built from a good free path. On an open (non-looping) clip the
    shortest cycle does not walk the clip and jump back: it goes out through every other frame
    and comes back through the rest. Local search started from a walk-and-jump tour never finds
    that, so the out-and-back tour is always constructed and compared. The same holds for paths
    whose fixed ends lie in the middle of the motion: from ``s`` go out to the near end and back,
    cross to ``t``'s side, go out to the far end and back to ``t``.

  **Candidates** are the 8 nearest neighbours of every frame plus its 10 alpha-nearest
  (Helsgaun's alpha-nearness on the minimum 1-tree after a Held-Karp subgradient ascent of node
  penalties, as in LKH). Nearest neighbours alone miss the steps that join two clips (every
  near neighbour of a clip's last frame is in that clip), and those steps were most of the
  remaining gap (``benchmarks/sequencing.py``).

* **Work budget and determinism**: the searches have a nominal number of kicks, a function of
  ``N`` only (:func:`_kicks`: 10 N, at least 4000, at most 50000, times ``effort``, default 1);
  a population member's search gets 2% of it, the prelude of fixed ends and cycles (the free
  path their out-and-back constructions start from: two searches in parallel threads, the
  shorter wins) 1/8 of it. A search stops after 1.4 times its kicks or 250 flips per kick,
  whichever comes first. Flips (2-opt moves made, tried or undone) track time closely where
  kicks do not: a kick on the LPIPS matrix of real clips makes about 2.5 times the flips of
  one on random points in the plane (longer chains) and takes about 3 times as long, so the
  flip budget ends the former early and the kick cap the latter. The evolution stops on its
  own (3 idle generations, at most 1000).
  All of it counts work, not time, and every random choice comes from ``seed``, so the same
  ``D`` and ``seed`` give the bit-identical order on any machine and under any load.
  ``time_budget`` (seconds, default ``None``: no limit) is only a safety cap (population
  members not started by then are dropped, searches and the evolution stop): when it cuts the
  search short the result depends on timing.

* **Methods**: ``"auto"`` (default) and ``"local"`` are this deterministic solver (``"local"``
  is kept for callers that asked for it by name). ``"fast-tsp"`` adds the tour of fast-tsp
  (MIT, C++; on distances quantised to uint16) as one more start for the same local search,
  but it stops on wall-clock time, so its results are NOT reproducible.

* **Time**: the first call in a process loads the compiled kernels (numba, ``cache=True``);
  the very first call after installing or changing ``_kernels.py`` compiles them (tens of
  seconds of CPU, once). Solving: see ``benchmarks/sequencing.py``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ReseqError

__all__ = ["EXACT_MAX", "Path", "check_distance_matrix", "loop", "order", "path_cost"]

EXACT_MAX = 12
_K = 8  # nearest candidate neighbours per node
_ASCENT = 100  # subgradient iterations for the alpha-nearness penalties (0: plain MST) ...
_ASCENT_OPS = 3e8  # ... fewer for large N: at most this many N^2 passes' worth of work
_PRELUDE = 8  # fixed ends and cycles start from a free path found with 1/_PRELUDE of the kicks
_KICK_CAP = 1.4  # a search makes at most 1.4 x its nominal kicks (_kicks) ...
_FLIPS = 250  # ... and at most 250 flips (2-opt moves, tried or undone too) per nominal kick
_RUNS = 2  # parallel iterated local searches of the prelude (the free path of fixed ends, cycles)
_KA = 10  # alpha-nearest candidates per node (on top of the nearest)
_POP = 60  # tours in the memetic search's population ...
_MEMBER = 0.02  # ... each first improved by an iterated local search of this share of the kicks
_NCH = 30  # EAX children tried per parent pair
_STALE = 3  # generations without a shorter tour before the memetic search stops ...
_GENS = 1000  # ... or at most this many


@dataclass(frozen=True)
class Path:
    """An ordering of frames and its cost.

    ``order`` holds frame indices; ``cost`` is the sum of the distances between consecutive
    frames, including the closing step ``order[-1] -> order[0]`` when ``closed``.
    """

    order: np.ndarray
    cost: float
    closed: bool
    _steps: np.ndarray = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def steps(self) -> np.ndarray:
        """Distances between consecutive frames (``N - 1`` of them, ``N`` when closed)."""
        return self._steps

    @property
    def max_step(self) -> float:
        """The largest step (0.0 for a single frame)."""
        return float(self._steps.max()) if len(self._steps) else 0.0

    def __len__(self) -> int:
        return len(self.order)


#: Largest N x max(D) a distance matrix may have: path costs (sums of N distances) and the
#: solvers' gains stay finite in float64.
MAX_TOTAL = 1e300


def _is_sparse(D) -> bool:
    """Whether ``D`` is a :class:`~reseq.graph.sparse.SparseDistances` (without importing it)."""
    return type(D).__name__ == "SparseDistances" and hasattr(D, "graph")


def check_distance_matrix(D, min_n: int = 1, name: str = "D") -> np.ndarray:
    """Validate a distance matrix and return it as a symmetric float64 array.

    Raises :class:`ReseqError` unless ``D`` is square, finite, non-negative, symmetric (within a
    relative tolerance of 1e-6; the two triangles are averaged), has at least ``min_n`` rows and
    distances small enough that sums of N of them stay finite (N x max(D) <= :data:`MAX_TOTAL`).
    The diagonal is ignored (set to 0).
    """
    if _is_sparse(D):
        raise ReseqError(f"this step needs the dense distance matrix {name}; it is not available "
                         "on the sparse path (sketches and a neighbour graph, used for large N)")
    try:
        A = np.array(D, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ReseqError(f"{name} is not a numeric matrix: {exc}") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ReseqError(f"{name} must be a square N x N matrix, got shape {A.shape}")
    n = A.shape[0]
    if n < min_n:
        raise ReseqError(f"{name} needs at least {min_n} frames, got {n}")
    if not np.isfinite(A).all():
        raise ReseqError(f"{name} contains NaN or infinite distances")
    np.fill_diagonal(A, 0.0)
    big = float(np.abs(A).max()) if n else 0.0
    if big * max(n, 1) > MAX_TOTAL:
        raise ReseqError(f"{name} has distances up to {big:.3g}: sums of {n} of them would "
                         f"overflow (the limit is N x max(D) <= {MAX_TOTAL:.0e}); rescale it, "
                         f"e.g. {name} / {name}.max()")
    scale = max(float(np.abs(A).max()) if n else 0.0, 1e-300)
    if A.min() < -1e-9 * scale:
        raise ReseqError(f"{name} contains negative distances (min {A.min():.3g})")
    asym = float(np.abs(A - A.T).max()) if n else 0.0
    if asym > 1e-6 * scale:
        raise ReseqError(f"{name} is not symmetric (largest |D - D.T| is {asym:.3g})")
    A = np.maximum((A + A.T) * 0.5, 0.0)
    return A


def path_cost(D: np.ndarray, order, closed: bool = False) -> float:
    """Sum of ``D`` along ``order`` (plus the closing step when ``closed``)."""
    o = np.asarray(order, dtype=np.intp)
    c = float(D[o[:-1], o[1:]].sum())
    if closed and len(o) > 1:
        c += float(D[o[-1], o[0]])
    return c


def _make_path(D: np.ndarray, order, closed: bool) -> Path:
    o = np.asarray(order, dtype=np.intp).copy()
    steps = D[o[:-1], o[1:]]
    if closed and len(o) > 1:
        steps = np.append(steps, D[o[-1], o[0]])
    o.setflags(write=False)
    steps.setflags(write=False)
    return Path(order=o, cost=float(steps.sum()), closed=closed, _steps=steps)


def _check_index(v, n: int, what: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ReseqError(f"{what} must be a frame index (int), got {v!r}")
    v = int(v)
    if not 0 <= v < n:
        raise ReseqError(f"{what}={v} is out of range for {n} frames (0..{n - 1})")
    return v



# ---------------------------------------------------------------------------------------------
# exact: Held–Karp
# ---------------------------------------------------------------------------------------------

def _held_karp(D: np.ndarray, starts, tail: np.ndarray) -> tuple[list[int], float]:
    """Cheapest path from one of ``starts`` through all nodes, plus ``tail[last]``.

    ``dp[mask, j]`` is the cheapest path that starts in ``starts``, visits exactly ``mask`` and
    ends at ``j``; it is filled one popcount layer at a time, vectorised over masks and ``k``.
    """
    n = len(D)
    size = 1 << n
    dp = np.full((size, n), np.inf)
    parent = np.full((size, n), -1, dtype=np.int8)
    for s in starts:
        dp[1 << s, s] = 0.0
    masks = np.arange(size, dtype=np.int64)
    pop = np.zeros(size, dtype=np.int64)
    for b in range(n):
        pop += (masks >> b) & 1
    layers = [masks[pop == p] for p in range(n + 1)]
    for p in range(1, n):
        M = layers[p]
        V = dp[M]  # (m, n): cost of paths over mask ending at k
        for j in range(n):
            sel = ((M >> j) & 1) == 0
            Mj = M[sel]
            W = V[sel] + D[:, j][None, :]
            k = np.argmin(W, axis=1)
            new = Mj | (1 << j)
            dp[new, j] = W[np.arange(len(k)), k]
            parent[new, j] = k
    full = size - 1
    total = dp[full] + tail
    j = int(np.argmin(total))
    best = float(total[j])
    if not np.isfinite(best):
        raise AssertionError("Held-Karp found no feasible path")
    out = [j]
    mask = full
    while True:
        k = int(parent[mask, j])
        if k < 0:
            break
        mask ^= 1 << j
        j = k
        out.append(j)
    out.reverse()
    return out, best


def _exact_path(D: np.ndarray, start: int | None, end: int | None) -> list[int]:
    n = len(D)
    if start is None and end is not None:
        return _exact_path(D, end, None)[::-1]
    starts = range(n) if start is None else [start]
    tail = np.zeros(n)
    if end is not None:
        tail = np.full(n, np.inf)
        tail[end] = 0.0
    return _held_karp(D, starts, tail)[0]


def _exact_cycle(D: np.ndarray) -> list[int]:
    return _held_karp(D, [0], D[:, 0].copy())[0]


def _neighbours(E: np.ndarray, k: int) -> np.ndarray:
    n = len(E)
    k = min(k, n - 1)
    W = E + np.diag(np.full(n, np.inf))
    nb = np.argpartition(W, k - 1, axis=1)[:, :k]
    d = np.take_along_axis(W, nb, axis=1)
    # sort each row by distance, ties by index (determinism)
    idx = np.lexsort((nb, d), axis=1)
    return np.take_along_axis(nb, idx, axis=1)


def _candidates(D: np.ndarray, k_near: int = _K, k_alpha: int = _KA) -> np.ndarray:
    """Candidate neighbours: the ``k_near`` nearest and the ``k_alpha`` alpha-nearest of every
    node, ``k_near + k_alpha`` per row (padded with the next nearest where the two sets
    overlap), each row sorted by distance, ties by index.

    Nearest neighbours alone miss the edges that join clusters (the ends of two clips): every
    near neighbour of a clip's last frame is in the same clip. Alpha-nearness ranks an edge by
    how little it costs to force it into the minimum spanning tree (of the distances plus node
    penalties from a Held-Karp subgradient ascent, :func:`~reseq.graph._kernels.ascent`; a
    greedy tour gives the ascent its upper bound), so those joins become candidates."""
    from . import _kernels

    n = len(D)
    width = min(k_near + k_alpha, n - 1)
    near = _neighbours(D, width)
    if k_alpha <= 0 or n <= width + 1:
        return near[:, :width]
    pi = np.zeros(n)
    iters = int(min(_ASCENT, max(30, _ASCENT_OPS / n**2))) if _ASCENT > 0 else 0
    if iters:
        upper = path_cost(D, _greedy_fragments(D, near[:, :k_near], closed=True), closed=True)
        pi, _ = _kernels.ascent(D, upper, iters)
    dad, topo, _ = _kernels.prim(D, pi)
    alpha = _kernels.alpha_nearest(D, pi, dad, topo, k_alpha)
    out = np.empty((n, width), dtype=np.int64)
    for i in range(n):
        seen = dict.fromkeys(near[i, :k_near].tolist())
        seen.update(dict.fromkeys(alpha[i].tolist()))
        for j in near[i, k_near:].tolist():
            if len(seen) >= width:
                break
            seen.setdefault(j)
        row = np.fromiter(seen, dtype=np.int64, count=len(seen))[:width]
        out[i] = row[np.lexsort((row, D[i, row]))]
    return out


# ---------------------------------------------------------------------------------------------
# constructions
# ---------------------------------------------------------------------------------------------

def _greedy_fragments(D: np.ndarray, nb: np.ndarray, closed: bool) -> list[int]:
    """Greedy edge matching on candidate edges, fragments joined greedily (path or cycle)."""
    n = len(D)
    i = np.repeat(np.arange(n), nb.shape[1])
    j = nb.ravel()
    keep = i < j
    both = np.concatenate((np.stack((i[keep], j[keep])), np.stack((j[~keep], i[~keep]))), axis=1)
    both = np.unique(both, axis=1)
    w = D[both[0], both[1]]
    order_ = np.lexsort((both[1], both[0], w))
    deg = [0] * n
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    adj: list[list[int]] = [[] for _ in range(n)]
    edges = 0
    for e in order_:
        u, v = int(both[0, e]), int(both[1, e])
        if deg[u] >= 2 or deg[v] >= 2:
            continue
        ru, rv = find(u), find(v)
        if ru == rv:
            continue
        parent[ru] = rv
        deg[u] += 1
        deg[v] += 1
        adj[u].append(v)
        adj[v].append(u)
        edges += 1
        if edges == n - 1:
            break
    # fragments as paths
    seen = [False] * n
    frags = []
    for s in range(n):
        if seen[s] or deg[s] == 2:
            continue
        path = [s]
        seen[s] = True
        prev, cur = -1, s
        while True:
            nxt = [x for x in adj[cur] if x != prev]
            if not nxt or seen[nxt[0]]:
                break
            prev, cur = cur, nxt[0]
            seen[cur] = True
            path.append(cur)
        frags.append(path)
    # join fragments: repeatedly attach the nearest fragment end to the growing path's tail
    frags.sort(key=len, reverse=True)
    cur = frags.pop(0)
    while frags:
        ends = np.array([[f[0], f[-1]] for f in frags])
        tail, head = cur[-1], cur[0]
        dt = D[tail, ends]  # (f, 2)
        dh = D[head, ends]
        if dt.min() <= dh.min():
            f, side = np.unravel_index(int(np.argmin(dt)), dt.shape)
            frag = frags.pop(int(f))
            cur = cur + (frag if side == 0 else frag[::-1])
        else:
            f, side = np.unravel_index(int(np.argmin(dh)), dh.shape)
            frag = frags.pop(int(f))
            cur = (frag[::-1] if side == 0 else frag) + cur
    return cur


def _out_and_back(p: list[int] | np.ndarray, a: int, b: int, parity: int = 0) -> list[int]:
    """A path from p[a] to p[b] (a < b) over all of ``p`` that never jumps far.

    From p[a] it goes out towards p[0] through every other frame and back through the rest, walks
    p[a+1 .. b-1], goes out towards p[-1] the same way and comes back to p[b]. With a = b = 0
    (and then closing it) this is the out-and-back cycle.
    """
    p = list(p)
    left = p[:a][::-1]  # frames beyond the start, nearest first
    right = p[b + 1:]   # frames beyond the end, nearest first
    out: list[int] = [p[a]]
    if left:
        out += left[parity::2] + left[1 - parity::2][::-1]
    out += p[a + 1:b]
    if right:
        out += right[parity::2] + right[1 - parity::2][::-1]
    out.append(p[b])
    return out


def _fix_ends(p: list[int], s: int | None, t: int | None) -> list[int]:
    """Turn a Hamiltonian path into one starting at s (and ending at t) by 2-opt reversals."""
    p = list(p)
    if s is not None and p[0] != s:
        k = p.index(s)
        if k == len(p) - 1:
            p = p[::-1]
        else:
            p = p[:k + 1][::-1] + p[k + 1:]
    if t is not None and p[-1] != t:
        m = p.index(t)
        p = p[:m] + p[m:][::-1]
    return p


def _path_from_cycle(t: np.ndarray, dummy: int) -> list[int]:
    k = int(np.nonzero(t == dummy)[0][0])
    return [int(x) for x in np.concatenate((t[k + 1:], t[:k]))]


# ---------------------------------------------------------------------------------------------
# drivers (the compiled local search and ILS live in _kernels)
# ---------------------------------------------------------------------------------------------

def _kicks(n: int, effort: float = 1.0) -> int:
    """Nominal kicks of each iterated local search (the work budget's unit, see the module doc):
    a function of N and ``effort`` only, never of the clock."""
    return max(1, round(effort * min(50_000, max(4_000, 10 * n))))


def _check_effort(effort) -> float:
    try:
        e = float(effort)
    except (TypeError, ValueError):
        e = float("nan")
    if not (e > 0 and np.isfinite(e)):
        raise ReseqError(f"effort must be a positive number (1 = default), got {effort!r}")
    return e


def _span(n: int) -> int:
    """Longest segment of a kick."""
    return int(max(1, min(100, (n - 2) // 3)))


class _Solver:
    """One run: the seeded random streams, the tolerance and the optional deadline."""

    def __init__(self, D: np.ndarray, seed: int, deadline: float | None,
                 fast_seconds: float = 0.0) -> None:
        from . import _kernels

        self.K = _kernels
        self.D = D
        self.n = len(D)
        self.dmax = float(D.max())
        self.eps = 1e-12 * self.dmax
        self.big = 4.0 * self.dmax if self.dmax > 0 else 1.0
        self.rng = np.random.default_rng(seed)
        self.deadline = deadline
        self.nb = _candidates(D, _K, _KA)
        self.fast_seconds = fast_seconds

    def fast(self, w: np.ndarray | None) -> list[list[int]]:
        """fast-tsp's tour of the cycle instance (``w``: the dummy's distances), or nothing."""
        if self.fast_seconds <= 0:
            return []
        import fast_tsp

        n = self.n
        if w is None:
            E = self.D
        else:
            E = np.empty((n + 1, n + 1))
            E[:n, :n] = self.D
            E[n, :] = w
            E[:, n] = w
        Q = _quantize(E, n)
        return [[int(v) for v in fast_tsp.find_tour(Q, self.fast_seconds)]]

    def _rng_state(self) -> np.ndarray:
        return np.array([self.rng.integers(1, 2**63 - 1)], dtype=np.uint64)

    def dummy(self, start: int | None, end: int | None):
        """Distances of the dummy node N and the candidate lists of the N + 1 instance."""
        n = self.n
        if start is None and end is None:
            w = np.zeros(n + 1)
        else:
            w = np.full(n + 1, self.big)
            for v in (start, end):
                if v is not None:
                    w[v] = 0.0
            w[n] = 0.0
        ids = np.concatenate((self.nb, np.full((n, 1), n, dtype=np.int64)), axis=1)
        dist = np.concatenate((np.take_along_axis(self.D, self.nb, axis=1), w[:n, None]), axis=1)
        idx = np.argsort(dist, axis=1, kind="stable")
        nbE = np.empty((n + 1, ids.shape[1]), dtype=np.int64)
        nbE[:n] = np.take_along_axis(ids, idx, axis=1)
        nbE[n] = np.lexsort((np.arange(n), w[:n]))[: ids.shape[1]]
        return w, nbE

    def _starts(self, tours, w, nd: int, nb) -> tuple[np.ndarray, float]:
        """The shortest of the start tours after local search."""
        best, best_cost = None, np.inf
        for t in tours:
            t = np.asarray(t, dtype=np.int64).copy()
            c = self.K.local_search(self.D, w, nd, nb, t, self.eps)
            if c < best_cost - self.eps:
                best, best_cost = t, c
        assert best is not None
        return best, best_cost

    def run(self, w, nd: int, nb, tours, kicks: int) -> tuple[np.ndarray, float]:
        """Local-search every start tour, then ``_RUNS`` iterated local searches of the best."""
        best, best_cost = self._starts(tours, w, nd, nb)
        if kicks > 0:
            # _RUNS independent iterated local searches (own seeds) in parallel threads (the
            # kernels release the GIL); the shortest wins, the first on ties: the result does
            # not depend on how many cores ran them
            from concurrent.futures import ThreadPoolExecutor

            runs = [(best.copy(), self._rng_state()) for _ in range(_RUNS)]
            cap, flips = round(_KICK_CAP * kicks), int(_FLIPS * kicks)

            def one(r):
                return self.K.ils(self.D, w, nd, nb, r[0], self.eps, cap, _span(len(best)),
                                  r[1], deadline=self.deadline, flips=flips)

            with ThreadPoolExecutor(max(1, min(_RUNS, os.cpu_count() or 1))) as ex:
                costs = list(ex.map(one, runs))
            k = int(np.argmin(costs))
            best, best_cost = runs[k][0], costs[k]
        return best, best_cost

    def evolve(self, w, nd: int, nb, tours, kicks: int, ends=()) -> tuple[np.ndarray, float]:
        """The memetic search: a population of ``_POP`` tours, each improved by a short
        iterated local search -- the best start tour, and random tours that keep the dummy's
        fixed ``ends`` -- then evolved by EAX (each tour's best child with the next tour of a
        random order replaces it when shorter) until ``_STALE`` generations bring nothing;
        the shortest tour, local-searched once more, wins."""
        from concurrent.futures import ThreadPoolExecutor

        from . import _eax

        best, _ = self._starts(tours, w, nd, nb)
        n = len(best)
        member_kicks = max(1, round(_MEMBER * kicks))
        cap, flips = round(_KICK_CAP * member_kicks), int(_FLIPS * member_kicks)
        seeds = [int(self.rng.integers(1, 2**62)) for _ in range(_POP)]
        if nd >= 0:
            free = np.array([v for v in range(n) if v != nd and v not in ends], np.int64)

        def member(i: int):
            if i > 0 and self._late():
                return None  # past time_budget: a smaller population
            if i == 0:
                t = best.copy()
            elif nd < 0:
                t = np.random.default_rng(seeds[i]).permutation(n).astype(np.int64)
            else:
                rest = np.random.default_rng(seeds[i]).permutation(free)
                t = np.concatenate(([nd, *ends[:1]], rest, ends[1:])).astype(np.int64)
            state = np.array([seeds[i]], dtype=np.uint64)
            c = self.K.ils(self.D, w, nd, nb, t, self.eps, cap, _span(n), state,
                           deadline=self.deadline, flips=flips)
            return t, c

        def child(job):
            a, b, state = job
            out = np.empty_like(pop[a])
            return a, _eax.eax(self.D, w, nd, nb, pop[a], pop[b], costs[a], state, _NCH, out), out

        with ThreadPoolExecutor(max(1, min(2, os.cpu_count() or 1))) as ex:
            members = [r for r in ex.map(member, range(_POP)) if r is not None]
            pop = [_eax.to_adj(t) for t, _ in members]
            costs = np.array([c for _, c in members])
            size = len(pop)
            stale = gens = 0
            while stale < _STALE and gens < _GENS and size > 1 and not self._late():
                gens += 1
                perm = self.rng.permutation(size)
                states = self.rng.integers(1, 2**62, size=size)
                jobs = [(perm[i], perm[(i + 1) % size], np.array([states[i]], dtype=np.uint64))
                        for i in range(size)]
                better = False
                # every child is made from this generation's tours, then the replacements
                # are applied in job order: the same result on any number of cores
                for a, c, out in list(ex.map(child, jobs)):
                    if c < costs[a] - self.eps:
                        pop[a], costs[a], better = out, c, True
                stale = 0 if better else stale + 1
        k = int(np.argmin(costs))
        t = _eax.to_tour(pop[k], nd if nd >= 0 else 0)
        return t, self.K.local_search(self.D, w, nd, nb, t, self.eps)

    def _late(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    def free_path(self, kicks: int, use_fast: bool = True, evolve: bool = True) -> list[int]:
        n = self.n
        w, nbE = self.dummy(None, None)
        greedy = _greedy_fragments(self.D, self.nb, closed=False)
        fast = self.fast(w) if use_fast else []
        search = self.evolve if evolve else self.run
        t, _ = search(w, n, nbE, [[n, *greedy], *fast], kicks)
        return _path_from_cycle(t, n)

    def path(self, start: int | None, end: int | None, kicks: int) -> list[int]:
        n = self.n
        if start is None and end is None:
            return self.free_path(kicks)
        fp = self.free_path(kicks // _PRELUDE, use_fast=False, evolve=False)
        cands = [_fix_ends(fp, start, end)]
        if start is not None and end is not None:
            a, b = fp.index(start), fp.index(end)
            q = fp if a < b else fp[::-1]
            a, b = q.index(start), q.index(end)
            for parity in (0, 1):
                cands.append(_out_and_back(q, a, b, parity))
        else:
            v = start if start is not None else end
            a = fp.index(v)
            # go out-and-back over the shorter side, then walk the longer one
            q = fp if a <= len(fp) - 1 - a else fp[::-1]
            a = q.index(v)
            for parity in (0, 1):
                p = _out_and_back(q, a, len(q) - 1, parity)
                cands.append(p if start is not None else p[::-1])
        w, nbE = self.dummy(start, end)
        cands += [_path_from_cycle(np.asarray(f), n) for f in self.fast(w)]
        cands = [[n, *_fix_ends(c, start, end)] for c in cands]
        ends = tuple(v for v in (start, end) if v is not None)
        t, _ = self.evolve(w, n, nbE, cands, kicks, ends)
        p = _path_from_cycle(t, n)
        if (start is not None and p[0] != start) or (start is None and p[-1] != end):
            p = p[::-1]
        return p

    def cycle(self, kicks: int) -> list[int]:
        fp = self.free_path(kicks // _PRELUDE, use_fast=False, evolve=False)
        cands = [_greedy_fragments(self.D, self.nb, closed=True), fp, *_zigzags(fp),
                 *self.fast(None)]
        t, _ = self.evolve(np.zeros(1), -1, self.nb, cands, kicks)
        return [int(x) for x in t]


def _zigzags(fp: list[int]) -> list[list[int]]:
    """Out-and-back cycles over a path: out through every other frame, back through the rest."""
    return [fp[0::2] + fp[1::2][::-1], [fp[0], *fp[1::2], *fp[2::2][::-1]]]


_METHODS = ("auto", "local", "fast-tsp")


def _quantize(E: np.ndarray, n_real: int) -> np.ndarray:
    """uint16 copy of ``E`` for fast-tsp: real distances scaled so that four times the longest
    minimum-spanning-tree step maps to 65534 (longer ones clipped), dummy entries above every
    real distance mapped to 65535."""
    from .mst import minimum_spanning_tree

    D = E[:n_real, :n_real]
    dmax = float(D.max())
    mst_max = max((w for _, _, w in minimum_spanning_tree(D)), default=0.0)
    clip = min(dmax, 4.0 * mst_max) if mst_max > 0 else dmax
    scale = 65534.0 / clip if clip > 0 else 0.0
    Q = np.minimum(np.rint(E * scale), 65534.0)
    if len(E) > n_real:
        big = E[n_real] > dmax
        Q[n_real, big] = 65535.0
        Q[big, n_real] = 65535.0
    np.fill_diagonal(Q, 0.0)
    return Q.astype(np.uint16)


def _fast_seconds(n: int) -> float:
    """fast-tsp's wall-clock share with ``method="fast-tsp"``: 0.25 s to N = 200, 1 s at
    N = 1000, 15 s from N = 5000."""
    return float(min(15.0, max(0.25, (n / 1000.0) ** 1.7)))


def _setup(n: int, seed, time_budget, method: str) -> tuple[float | None, float]:
    """(deadline or None, seconds for fast-tsp)."""
    if method not in _METHODS:
        raise ReseqError(f"method must be one of {', '.join(_METHODS)}; got {method!r}")
    fast = _fast_seconds(n) if method == "fast-tsp" else 0.0
    if time_budget is None:
        return None, fast
    if not float(time_budget) > 0:
        raise ReseqError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
    if fast:
        fast = min(fast, 0.5 * float(time_budget))
    return time.perf_counter() + float(time_budget), fast


def order(D, start: int | None = None, end: int | None = None, seed: int = 0,
          time_budget: float | None = None, method: str = "auto", effort: float = 1.0) -> Path:
    """The shortest Hamiltonian path through all frames (paper eq. 5).

    ``start`` / ``end`` fix the first / last frame (indices); ``None`` leaves that end free (with
    both free, ``order[0] < order[-1]``). Exact for N <= 12, near-optimal beyond, and the same
    ``D`` and ``seed`` always give the same order. ``time_budget``: an optional cap in seconds
    (hitting it makes the result timing-dependent); ``method``: "auto" or "local" (the same
    deterministic solver); ``effort``: a multiplier of the local searches' kicks (more time:
    about 2-2.5x at 4 on N = 1000; usually, not always, a slightly shorter path; still
    deterministic). See the module doc.

    >>> import numpy as np
    >>> x = np.array([0.0, 3.0, 1.0, 2.0])
    >>> D = (x[:, None] - x[None, :]) ** 2
    >>> p = order(D, start=0)
    >>> p.order.tolist(), p.cost
    ([0, 2, 3, 1], 3.0)
    """
    if _is_sparse(D):  # sketches + candidate graph (reseq.graph.sparse): no N x N matrix
        from .sparse import sparse_order

        _setup(len(D), seed, time_budget, method)
        return sparse_order(D, start, end, seed=seed, effort=_check_effort(effort), show=True)
    A = check_distance_matrix(D, 2)
    n = len(A)
    start = _check_index(start, n, "start")
    end = _check_index(end, n, "end")
    if start is not None and start == end:
        raise ReseqError("start and end must be different frames for a path (use loop for a cycle)")
    deadline, fast = _setup(n, seed, time_budget, method)
    effort = _check_effort(effort)
    if n <= EXACT_MAX:
        p = _exact_path(A, start, end)
    else:
        p = _Solver(A, seed, deadline, fast).path(start, end, _kicks(n, effort))
    if start is None and end is None and p[0] > p[-1]:
        p = p[::-1]  # canonical direction for free ends
    if start is not None:
        assert p[0] == start, "bug: start not honoured"
    if end is not None:
        assert p[-1] == end, "bug: end not honoured"
    assert sorted(p) == list(range(n)), "bug: not a permutation"
    return _make_path(A, p, closed=False)


def loop(D, seed: int = 0, time_budget: float | None = None, method: str = "auto",
         effort: float = 1.0) -> Path:
    """The shortest Hamiltonian cycle through all frames (paper eq. 6).

    ``order`` starts at frame 0 and ``order[1] < order[-1]`` (the direction is arbitrary);
    ``cost`` includes the closing step. Exact for N <= 12, near-optimal beyond, deterministic
    under ``seed``; ``time_budget``, ``method`` and ``effort`` as in :func:`order`.

    >>> import numpy as np
    >>> x = np.arange(6.0)
    >>> D = (x[:, None] - x[None, :]) ** 2
    >>> loop(D).order.tolist()   # out through the even frames, back through the odd ones
    [0, 1, 3, 5, 4, 2]
    >>> print(f"{loop(D).cost:g} {loop(D).max_step:g}")
    18 4
    """
    if _is_sparse(D):
        from .sparse import sparse_loop

        _setup(len(D), seed, time_budget, method)
        return sparse_loop(D, seed=seed, effort=_check_effort(effort), show=True)
    A = check_distance_matrix(D, 3)
    n = len(A)
    deadline, fast = _setup(n, seed, time_budget, method)
    effort = _check_effort(effort)
    if n <= EXACT_MAX:
        c = _exact_cycle(A)
    else:
        c = _Solver(A, seed, deadline, fast).cycle(_kicks(n, effort))
    assert sorted(c) == list(range(n)), "bug: not a permutation"
    k = c.index(0)
    c = c[k:] + c[:k]
    if c[1] > c[-1]:
        c = [c[0], *c[1:][::-1]]
    return _make_path(A, c, closed=True)


def warm_up() -> None:
    """Load the compiled search kernels (numba's on-disk cache, about 0.5 s) by solving a tiny
    instance. Interfaces call it in a background thread while frames are being decoded, so
    that a warm ``reseq order`` does not pay the load inside its solve."""
    x = np.linspace(0.0, 1.0, 3 * EXACT_MAX)
    order((x[:, None] - x[None, :]) ** 2, effort=0.01)
