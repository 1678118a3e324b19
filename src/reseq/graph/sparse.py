"""Sparse distances: the graph algorithms without an N x N matrix (APPROXIMATE distances).

A :class:`SparseDistances` holds the sketches of N frames (:mod:`reseq.sketches`, ``||S_i -
S_j||^2`` estimates LPIPS) and their candidate graph (:func:`reseq.graph.knn.knn_graph`: the k
nearest neighbours of every frame, symmetrised, made connected) as a ``scipy.sparse`` CSR matrix
of sketch distances. Any other distance comes on demand from the sketches
(:meth:`SparseDistances.distance`, :meth:`SparseDistances.block`). :func:`reseq.graph.order`,
:func:`~reseq.graph.loop`, :func:`~reseq.graph.minimum_spanning_tree`,
:func:`~reseq.graph.inbetweens` and :func:`~reseq.graph.outliers` accept it wherever they accept
a dense ``D``, and dispatch here; every cost they report is a sketch distance.

* **order / loop** (:func:`sparse_order`, :func:`sparse_loop`): greedy edge matching on the
  candidate edges (shortest first, no vertex of degree 3, no cycle; fixed ends kept at degree
  1); the fragments left are joined the same way on the nearest neighbours among fragment ends
  (exact search on the ends' sketches, repeated until one path remains). A compiled 2-opt /
  Or-opt local search on the neighbour lists (:func:`local_search`) follows; then the path is
  cut at its 599 longest steps and the pieces re-ordered and turned by the dense solver on
  their ends (:func:`arrange_segments`: the clip-to-clip joins neighbour lists cannot see),
  and searched locally again. Then windows of ``window`` (1000) consecutive
  frames of the path are each re-solved by the dense solver (:func:`reseq.graph.order`, the
  memetic search, on the window's matrix computed from the sketches) with the window's end
  frames fixed, and the new sub-path kept when shorter; ``passes`` (2, or none above
  :data:`REFINE_MAX` frames) passes, the second with windows shifted by half a window so that
  the seams of the first are inside a window. A loop
  is the path closed, and its windows wrap around. Deterministic under ``seed``.
* **minimum_spanning_tree**: the exact MST of the candidate graph (``scipy.sparse.csgraph``),
  connected by construction. scipy drops explicit zeros, so a zero distance (duplicate frames)
  is stored in the graph as :data:`ZERO` (the smallest normal float64) and reported as 0. It is
  the MST of the complete graph whenever that tree's edges are among the candidates, which for
  near-neighbour trees they almost always are.
* **outliers**: the scores are means over the ``k`` nearest neighbours, which the candidate
  graph lists exactly (for the sketch distances) as long as ``k`` is at most its ``k``.

>>> import numpy as np
>>> from reseq.graph.knn import knn_graph
>>> x = np.array([0.0, 2.0, 1.0, 3.0, 5.0, 4.0], np.float32)[:, None]
>>> SD = knn_graph(x, k=2)
>>> len(SD), SD.distance([0], [3]).tolist()
(6, [9.0])
"""

from __future__ import annotations

import numpy as np

from ..errors import ReseqError

__all__ = ["DENSE_MAX", "REFINE_MAX", "WINDOW", "ZERO", "SparseDistances", "arrange_segments",
           "greedy_path", "is_sparse", "local_search", "passes_for", "sparse_inbetweens",
           "sparse_loop", "sparse_mst", "sparse_order"]

#: How an exact zero distance is stored in the candidate graph (scipy drops explicit zeros).
ZERO = float(np.finfo(np.float64).tiny)
#: The CLI's dense path up to this many frames; the sparse path above (see the module doc).
#: Measured (``benchmarks/scale.py stages --n 5000 --dense``): the dense matrix + solver peaked
#: at 1.2 GB RSS at N = 5000, growing as N^2 (about 3 GB at 8000); the sparse path stays under
#: 0.7 GB at N = 20,000 and its path cost was within 0.3% of the dense one at N = 5000.
DENSE_MAX = 8000
#: Frames per window re-solved by the dense solver.
WINDOW = 1000
#: Window passes are skipped above this many frames (``passes=None``). Measured on 20,000 real
#: frames (``benchmarks/scale.py order``): the two passes take 114 s and shorten the local-search
#: path by 2.9%; one window costs 1-4 s on this 2-core machine, so at 10^6 frames (1,000
#: windows a pass) they would take about an hour, longer than everything else together.
REFINE_MAX = 200_000


class SparseDistances:
    """Sketches ``S`` (N, d) and their candidate graph ``graph`` (CSR, N x N, symmetric).

    ``neighbours``: optionally the (idx, dist) k-nearest lists the graph was built from (each
    row sorted); recomputed from the graph when absent.
    """

    def __init__(self, S: np.ndarray, graph, neighbours=None):
        import scipy.sparse as sp

        self.S = np.ascontiguousarray(S, dtype=np.float32)
        self.graph = sp.csr_matrix(graph)
        n = len(self.S)
        if self.graph.shape != (n, n):
            raise ReseqError(f"the candidate graph is {self.graph.shape}, expected ({n}, {n})")
        self._nb = neighbours

    def __len__(self) -> int:
        return len(self.S)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.S), len(self.S))

    def __repr__(self) -> str:
        return (f"SparseDistances(N={len(self)}, d={self.S.shape[1]}, "
                f"edges={self.graph.nnz // 2})")

    @classmethod
    def from_sketches(cls, S: np.ndarray, k: int = 10, show: bool = False) -> SparseDistances:
        """The candidate graph of ``S`` (:func:`reseq.graph.knn.knn_graph`)."""
        from .knn import knn_graph

        return knn_graph(S, k, show)

    def distance(self, i, j) -> np.ndarray:
        """Sketch distances of the pairs ``(i[m], j[m])`` (float64; identical sketches: 0)."""
        from .knn import _exact

        return _exact(self.S, np.atleast_1d(i), np.atleast_1d(j))

    def block(self, rows) -> np.ndarray:
        """The dense matrix of sketch distances among ``rows`` (float64, exact zero diagonal,
        exact zeros between identical sketches)."""
        rows = np.asarray(rows, dtype=np.intp)
        X = self.S[rows].astype(np.float64)
        X -= X.mean(axis=0)
        sq = np.einsum("ij,ij->i", X, X)
        D = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
        D = 0.5 * (D + D.T)
        np.maximum(D, 0.0, out=D)
        _, inv = np.unique(self.S[rows], axis=0, return_inverse=True)
        D[inv.ravel()[:, None] == inv.ravel()[None, :]] = 0.0
        return D

    def neighbours(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest neighbours of every frame: (idx (N, k), dist (N, k)), sorted; from
        the lists the graph was built from; without them (a graph loaded from disk), the ``k``
        nearest of every row of the graph, which holds them (it is their symmetrised union);
        else a new search (:func:`~reseq.graph.knn.knn`)."""
        from .knn import knn

        n = len(self)
        if not 1 <= k <= n - 1:
            raise ReseqError(f"k must be between 1 and N - 1 = {n - 1}, got {k}")
        if self._nb is None and self.graph.nnz and np.diff(self.graph.indptr).min() >= k:
            self._nb = _row_nearest(self.graph, k)
        if self._nb is None or self._nb[0].shape[1] < k:
            self._nb = knn(self.S, k)
        return self._nb[0][:, :k], self._nb[1][:, :k]

    def take(self, idx) -> SparseDistances:
        """The frames ``idx`` (in that order): a permutation keeps the graph (relabelled), a
        subset gets a new candidate graph of its own sketches (same ``k``)."""
        idx = np.asarray(idx, dtype=np.intp)
        n = len(self)
        if len(idx) == n and np.array_equal(np.sort(idx), np.arange(n)):
            inv = np.empty(n, np.intp)
            inv[idx] = np.arange(n)
            nb = None
            if self._nb is not None:
                nb = (inv[self._nb[0][idx]], self._nb[1][idx])
            return SparseDistances(self.S[idx], self.graph[idx][:, idx], nb)
        k = self._nb[0].shape[1] if self._nb is not None else 10
        from .knn import knn_graph

        return knn_graph(self.S[idx], k)

    def __getitem__(self, key):
        """``SD[i, j]``: sketch distances of index arrays (element-wise, like a dense ``D``);
        ``SD[np.ix_(idx, idx)]``: :meth:`take` (the frames ``idx``), so code written for a
        dense matrix can subset and reorder either."""
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError("index SparseDistances with two index arrays: SD[i, j]")
        i, j = (np.asarray(x) for x in key)
        if i.ndim == 2 and j.ndim == 2 and i.shape[1] == 1 and j.shape[0] == 1 \
                and np.array_equal(i.ravel(), j.ravel()):
            return self.take(i.ravel())
        i, j = np.broadcast_arrays(i, j)
        out = self.distance(i.ravel(), j.ravel()).reshape(i.shape)
        return out if out.ndim else float(out)

    def knn_scores(self, k: int = 5) -> np.ndarray:
        """Mean distance of every frame to its ``k`` nearest others (paper eq. 3)."""
        return self.neighbours(k)[1].mean(axis=1)

    def path_cost(self, order, closed: bool = False) -> float:
        o = np.asarray(order, dtype=np.intp)
        c = float(self.distance(o[:-1], o[1:]).sum()) if len(o) > 1 else 0.0
        if closed and len(o) > 1:
            c += float(self.distance([o[-1]], [o[0]])[0])
        return c


def _row_nearest(G, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest entries of every row of the CSR ``G`` (each row holding at least
    ``k``), sorted by (distance, index); :data:`ZERO` read back as 0."""
    G = G.copy()
    G.sort_indices()
    n = G.shape[0]
    row = np.repeat(np.arange(n), np.diff(G.indptr))
    w = np.where(G.data <= ZERO, 0.0, G.data)
    o = np.lexsort((G.indices, w, row))
    take = (G.indptr[:-1, None] + np.arange(k)[None, :]).ravel()
    idx = G.indices[o[take]].astype(np.int64).reshape(n, k)
    return idx, w[o[take]].reshape(n, k)


def is_sparse(D) -> bool:
    """Whether ``D`` is a :class:`SparseDistances` (not a dense matrix)."""
    return isinstance(D, SparseDistances)


# ------------------------------------------------------------------------- construction

def _greedy(u: np.ndarray, v: np.ndarray, w: np.ndarray, deg, cap, oe, adj, edges: int,
            n: int, ends: tuple[int, int] | None) -> int:
    """Add candidate edges shortest first (ties by indices): no vertex above its degree ``cap``,
    no cycle (``oe``: the other end of each fragment end), and, with two fixed ``ends``, no
    fragment running from one to the other before the last join (compiled:
    :func:`reseq.graph._sparse_kernels.greedy_edges`)."""
    from . import _sparse_kernels as _sk

    o = np.lexsort((v, u, w))
    e0, e1 = ends if ends is not None else (-1, -1)
    return int(_sk.greedy_edges(o, np.asarray(u, np.int64), np.asarray(v, np.int64), deg, cap,
                                oe, adj, edges, n, e0, e1))


def greedy_path(SD: SparseDistances, start: int | None = None,
                end: int | None = None) -> np.ndarray:
    """A Hamiltonian path by greedy edge matching on the candidate graph, fragments joined by
    greedy matching on the nearest neighbours among their ends (see the module doc); ``start``
    and ``end`` (optional) are kept at degree 1, so the path runs from one to the other."""
    from .knn import knn

    n = len(SD)
    G = SD.graph.tocoo()
    keep = G.row < G.col
    u, v = G.row[keep].astype(np.int64), G.col[keep].astype(np.int64)
    w = np.where(G.data[keep] <= ZERO, 0.0, G.data[keep])
    deg = np.zeros(n, np.int64)
    cap = np.full(n, 2, np.int64)
    for x in (start, end):
        if x is not None:
            cap[x] = 1
    both = (start, end) if start is not None and end is not None else None
    oe = np.arange(n, dtype=np.int64)
    adj = np.full((n, 2), -1, np.int64)
    edges = _greedy(u, v, w, deg, cap, oe, adj, 0, n, both)
    k = 8
    while edges < n - 1:
        ends = np.flatnonzero(deg < cap)
        kk = int(min(k, len(ends) - 1))
        idx, dist = knn(SD.S[ends], kk)
        before = edges
        edges = _greedy(np.repeat(ends, kk), ends[idx.ravel()], dist.ravel(), deg, cap, oe, adj,
                        edges, n, both)
        k = 8 if edges > before else 2 * k  # no join among the k nearest ends: look further
    first = start if start is not None else (
        int(np.flatnonzero(deg < 2)[0]) if end is None else end)
    path = np.empty(n, np.int64)
    prev, cur = -1, int(first)
    for m in range(n):
        path[m] = cur
        nxt = adj[cur, 0] if adj[cur, 0] != prev else adj[cur, 1]
        prev, cur = cur, int(nxt)
    return path if start is not None or end is None else path[::-1].copy()


def local_search(SD: SparseDistances, path: np.ndarray, fix_start: bool, fix_end: bool,
                 k: int = 10, rounds: int = 100) -> np.ndarray:
    """2-opt and Or-opt on the ``k`` nearest neighbours of every frame, distances from the
    sketches (compiled: :mod:`reseq.graph._sparse_kernels`); a new, shorter path."""
    from . import _sparse_kernels as _sk

    nb = SD.neighbours(int(min(k, len(SD) - 1)))[0]
    p = np.ascontiguousarray(path, dtype=np.int64).copy()
    steps = SD.distance(p[:-1], p[1:])
    eps = 1e-12 * max(float(steps.mean()) if len(steps) else 0.0, 1e-300)
    _sk.improve(SD.S, np.ascontiguousarray(nb, dtype=np.int64), p, fix_start, fix_end,
                rounds, eps)
    return p


def arrange_segments(SD: SparseDistances, path: np.ndarray, fix_start: bool, fix_end: bool,
                     seed: int = 0, segments: int = 600, closed: bool = False) -> np.ndarray:
    """Cut ``path`` at its ``segments - 1`` longest steps and re-order (and turn) the pieces with
    the dense solver: nodes are the pieces' two ends, an end is at distance 0 from its piece's
    other end and ``B + d`` from every other end (``B`` larger than any path's total of real
    distances, so every optimum keeps each piece whole). This is the move local search on
    neighbour lists cannot make: the ends of clips are not among each other's neighbours.
    The new path is kept only when it is shorter (and whole). ``closed``: ``path`` is a cycle
    (its closing step counts, and may be cut), re-arranged by the dense loop solver."""
    from .tsp import loop as dense_loop
    from .tsp import order as dense_order

    n = len(path)
    if closed:  # cut the cycle at its longest step first: then it is a path like any other
        steps = SD.distance(path, np.roll(path, -1))
        path = np.roll(path, -(int(np.argmax(steps)) + 1))
    steps = SD.distance(path[:-1], path[1:])
    m = int(min(segments, n // 2))
    if m < 3:
        return path
    cuts = np.sort(np.argsort(-steps, kind="stable")[:m - 1]) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [n]])
    ends = np.empty(2 * m, np.int64)
    ends[0::2] = path[starts]
    ends[1::2] = path[stops - 1]
    E = SD.block(ends)
    top = float(E.max())
    if not top > 0:
        return path
    W = E / top + m
    q = np.arange(m)
    W[2 * q, 2 * q + 1] = W[2 * q + 1, 2 * q] = 0.0
    np.fill_diagonal(W, 0.0)
    if closed:
        o = np.asarray(dense_loop(W, seed=seed).order)
        if o[0] // 2 != o[1] // 2:
            o = np.roll(o, -1)
    else:
        o = np.asarray(dense_order(W, start=0 if fix_start else None,
                                   end=2 * m - 1 if fix_end else None, seed=seed).order)
    pieces = []
    for r in range(0, 2 * m, 2):
        a, b = int(o[r]), int(o[r + 1])
        if a // 2 != b // 2:
            return path  # a piece was split: keep the old path
        seg = path[starts[a // 2]:stops[a // 2]]
        pieces.append(seg if a % 2 == 0 else seg[::-1])
    new = np.concatenate(pieces)
    if SD.path_cost(new, closed) < SD.path_cost(path, closed):
        return new
    return path


# ------------------------------------------------------------------------- windows

def passes_for(n: int, passes: int | None = None) -> int:
    """Window passes for ``n`` frames: ``passes``, or by default 2 up to :data:`REFINE_MAX`
    frames and 0 above."""
    if passes is None:
        return 2 if n <= REFINE_MAX else 0
    return int(passes)


def _refine(SD: SparseDistances, path: np.ndarray, closed: bool, free_start: bool,
            free_end: bool, seed: int, effort: float, window: int, passes: int | None,
            show: bool) -> np.ndarray:
    from .._util import progress as _progress
    from .tsp import order as dense_order

    n = len(path)
    passes = passes_for(n, passes)
    path = path.copy()
    for p in range(passes):
        shift = (window // 2) * (p % 2)
        if closed:
            path = np.roll(path, -shift)
            bounds = list(range(0, n, window))
        else:
            bounds = [0, *list(range(shift or window, n, window))]
        spans = [(a, min(n, b)) for a, b in zip(bounds, [*bounds[1:], n]) if min(n, b) - a >= 4]
        for a, b in _progress(spans, f"windows (pass {p + 1}/{passes})", total=len(spans),
                              enabled=show and len(spans) > 1, unit="window"):
            sub = path[a:b]
            D = SD.block(sub)
            s = None if (not closed and a == 0 and free_start) else 0
            t = None if (not closed and b == n and free_end) else len(sub) - 1
            m = len(sub)
            before = float(D[np.arange(m - 1), np.arange(1, m)].sum())
            res = dense_order(D, start=s, end=t, seed=seed + p * 7919 + a, effort=effort)
            if res.cost < before - 1e-12 * max(before, 1e-300):
                path[a:b] = sub[res.order]
        if closed:
            path = np.roll(path, shift)
    return path


def _stages(show: bool, n: int):
    """A progress bar over the four construction steps (an iterator: ``next`` per step)."""
    from .._util import progress as _progress

    bar = iter(_progress(range(4), "path (greedy, local search, pieces, local search)",
                         total=4, enabled=show and n > 20_000, unit="step"))
    next(bar)  # shown at 0/4; each step's next() counts one, the fourth closes it
    return bar


def _sparse_path(SD, o, closed):
    from .tsp import Path

    o = np.asarray(o, dtype=np.intp).copy()
    steps = SD.distance(o[:-1], o[1:])
    if closed and len(o) > 1:
        steps = np.append(steps, SD.distance([o[-1]], [o[0]]))
    o.setflags(write=False)
    steps.setflags(write=False)
    return Path(order=o, cost=float(steps.sum()), closed=closed, _steps=steps)


def sparse_order(SD: SparseDistances, start=None, end=None, seed: int = 0, effort: float = 1.0,
                 window: int = WINDOW, passes: int | None = None, show: bool = False):
    """:func:`reseq.graph.order` on a :class:`SparseDistances` (see the module doc);
    ``passes=None``: 2 up to :data:`REFINE_MAX` frames, 0 above."""
    from .tsp import _check_index
    from .tsp import order as dense_order

    n = len(SD)
    if n < 2:
        raise ReseqError(f"D needs at least 2 frames, got {n}")
    start = _check_index(start, n, "start")
    end = _check_index(end, n, "end")
    if start is not None and start == end:
        raise ReseqError("start and end must be different frames for a path (use loop for a cycle)")
    if n <= window:
        p = dense_order(SD.block(np.arange(n)), start, end, seed=seed, effort=effort).order
    else:
        fs, fe = start is not None, end is not None
        bar = _stages(show, n)
        p = greedy_path(SD, start, end)
        next(bar, None)
        p = local_search(SD, p, fs, fe)
        next(bar, None)
        p = arrange_segments(SD, p, fs, fe, seed)
        next(bar, None)
        p = local_search(SD, p, fs, fe)
        next(bar, None)
        p = _refine(SD, p, False, start is None, end is None, seed, effort, window, passes, show)
    if start is None and end is None and p[0] > p[-1]:
        p = p[::-1]
    assert start is None or p[0] == start, "bug: start not honoured"
    assert end is None or p[-1] == end, "bug: end not honoured"
    assert np.array_equal(np.sort(p), np.arange(n)), "bug: not a permutation"
    return _sparse_path(SD, p, closed=False)


def sparse_loop(SD: SparseDistances, seed: int = 0, effort: float = 1.0, window: int = WINDOW,
                passes: int | None = None, show: bool = False):
    """:func:`reseq.graph.loop` on a :class:`SparseDistances` (see the module doc);
    ``passes=None``: 2 up to :data:`REFINE_MAX` frames, 0 above."""
    from .tsp import loop as dense_loop

    n = len(SD)
    if n < 3:
        raise ReseqError(f"D needs at least 3 frames, got {n}")
    if n <= window:
        c = dense_loop(SD.block(np.arange(n)), seed=seed, effort=effort).order
    else:
        bar = _stages(show, n)
        c = greedy_path(SD)
        next(bar, None)
        c = local_search(SD, c, True, True)
        next(bar, None)
        c = arrange_segments(SD, c, True, True, seed, closed=True)
        next(bar, None)
        c = local_search(SD, np.roll(c, -(n // 2)), True, True)  # the closing step inside
        next(bar, None)
        c = _refine(SD, c, True, False, False, seed, effort, window, passes, show)
    c = np.asarray(c, dtype=np.int64)
    k = int(np.flatnonzero(c == 0)[0])
    c = np.concatenate([c[k:], c[:k]])
    if c[1] > c[-1]:
        c = np.concatenate([c[:1], c[1:][::-1]])
    assert np.array_equal(np.sort(c), np.arange(n)), "bug: not a permutation"
    return _sparse_path(SD, c, closed=True)


# ------------------------------------------------------------------------- trees

def sparse_mst(SD: SparseDistances) -> list[tuple[int, int, float]]:
    """The MST of the candidate graph as ``N - 1`` edges ``(parent, child, weight)``, parents
    before children (breadth first from frame 0); zero distances are real edges."""
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

    n = len(SD)
    if n == 1:
        return []
    T = minimum_spanning_tree(SD.graph)
    T = (T + T.T).tocsr()
    nodes, pred = breadth_first_order(T, 0, directed=False, return_predecessors=True)
    if len(nodes) != n:
        raise AssertionError("bug: the candidate graph is not connected")
    child = nodes[1:]
    par = pred[child]
    w = SD.distance(par, child)
    return [(int(a), int(b), float(c)) for a, b, c in zip(par, child, w)]


def sparse_inbetweens(SD: SparseDistances, keys):
    """:func:`reseq.graph.inbetweens` on the MST of the candidate graph."""
    from .mst import along_tree, check_keys

    n = len(SD)
    if n < 2:
        raise ReseqError(f"D needs at least 2 frames, got {n}")
    keys = check_keys(keys, n)
    return along_tree(sparse_mst(SD), keys, n, SD.path_cost)
