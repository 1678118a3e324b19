"""The candidate graph: the k nearest neighbours of every frame, from its sketch.

At scale (:mod:`reseq.sketches`) no N x N matrix is built: every algorithm works on the edges
between near frames. :func:`knn` finds each sketch's ``k`` nearest others in one of two ways:

- ``"exact"``: a blocked matrix product: queries in blocks of :data:`BLOCK` rows against all
  sketches (float32 GEMM on centred sketches to rank, ``torch.topk`` per block). Memory: the
  sketches plus one ``BLOCK x N`` float32 block. With a Dask scheduler (``scheduler=`` or
  ``$RESEQ_DASK_SCHEDULER``, as for :func:`reseq.sketches.sketch`) the query blocks run as tasks
  on its workers against the centred sketches, sent once to every worker; the arithmetic per
  block is the same, so the result is identical to the in-process one.
- ``"ivf"``: an inverted file: the sketches are split into about ``2 sqrt(N)`` cells by k-means
  (faiss, seeded, on a seeded sample: the same cells on every run and with any number of
  threads); a cell of more than :data:`SPLIT` average cells' worth is split by a k-means of its
  own (a cell costs its size times its candidates'). Every sketch is compared exactly (float32
  GEMM, block by block, ranked by ``||c||^2 - 2 q.c``) with the sketches of its own cell and of
  the cells nearest to its cell's centroid, up to
  :data:`NPROBE` cells or :data:`NPROBE` average cells' worth of sketches. No copy of the
  sketches is kept beside them (memory: the sketches plus one cell's candidates). Measured
  recall of the 10 nearest (``benchmarks/scale.py knn``, docs/SCALE.md): 0.998 on 20,000
  real frames (d = 256 and 1,024; the exact search took 5-6x longer) and 1.000 on 10^6
  video-like synthetic sketches (d = 256, 1,000 sampled queries) in minutes on 2 cores, where
  the exact search would take hours. A sketch whose probed cells hold fewer than ``k`` others
  is searched exactly.

``"auto"`` (the default) is exact up to :data:`EXACT_MAX` sketches, the index above. Either
way the kept distances are recomputed in float64 from the differences (a pair of identical
sketches gets exactly 0) and every row is sorted by (distance, index).

:func:`knn_graph` symmetrises the lists (an edge when either end lists the other) and makes the
graph connected: while it has several components, every component but the largest gets its
shortest edge to another component (Borůvka rounds, each one at least halving the count; the
nearest outside node is found by :func:`nearest_outside`, remembered from round to round while it
stays outside; above :data:`EXACT_MAX` from the index). When more than
:data:`OUTSIDE_EXACT` nodes lie outside the largest component, or with the index, only
:data:`OUTSIDE_SAMPLE` evenly spaced members of each component are asked: the edge found is then
a short one out, not always the shortest (on 10^5 real frames of 120 separate variant clips,
asking every node cost a scan of 10^5 x 10^5 sketch pairs a round, more than the neighbour search
itself). The result is a :class:`~reseq.graph.sparse.SparseDistances`.

>>> import numpy as np
>>> S = np.array([[0.0], [1.0], [3.0], [10.0]], np.float32)
>>> idx, dist = knn(S, 1)
>>> idx.ravel().tolist(), dist.ravel().tolist()
([1, 0, 1, 2], [1.0, 1.0, 4.0, 49.0])
>>> idx2, dist2 = knn(S, 1, method="ivf")
>>> bool((idx2 == idx).all() and (dist2 == dist).all())
True
"""

from __future__ import annotations

import os

import numpy as np

from .._util import progress as _progress
from ..errors import ReseqError

__all__ = ["BLOCK", "EXACT_MAX", "NPROBE", "OUTSIDE_EXACT", "OUTSIDE_SAMPLE", "SPLIT", "knn",
           "knn_graph", "nearest_outside"]

#: Query rows per block of the exact search.
BLOCK = 512
#: ``method="auto"``: the exact search up to this many sketches, the IVF index above.
EXACT_MAX = 200_000
#: Cells compared with each cell by the ``"ivf"`` search (its own first).
NPROBE = 8
#: ``"ivf"``: a k-means cell of more than this many average cells' worth of sketches is split.
SPLIT = 4
#: Members of a component asked for their nearest outside node, with the index or when more
#: than :data:`OUTSIDE_EXACT` nodes are outside the largest component (all of them otherwise).
OUTSIDE_SAMPLE = 64
#: Up to this many nodes outside the largest component, every one of them is asked.
OUTSIDE_EXACT = 20_000
#: Query blocks per Dask task.
TASK_BLOCKS = 8
#: Queries per call of the index (bounds the memory of one search).
_SEARCH_CHUNK = 16384
_METHODS = ("auto", "exact", "ivf")


def _exact(S: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``||S[rows] - S[cols]||^2`` in float64, pair by pair, in chunks (bounded memory)."""
    rows, cols = np.asarray(rows, np.intp).ravel(), np.asarray(cols, np.intp).ravel()
    out = np.empty(len(rows))
    for a in range(0, len(rows), chunk):
        diff = S[rows[a:a + chunk]].astype(np.float64) - S[cols[a:a + chunk]]
        out[a:a + chunk] = np.einsum("ij,ij->i", diff, diff)
    return out


def _nlist(n: int) -> int:
    """k-means cells of the IVF index for ``n`` sketches: about ``2 sqrt(n)``, a power of two,
    at least 1 and at most ``n // 39`` (faiss wants about 39 training points a cell)."""
    c = 1 << max(0, round(float(np.log2(2.0 * np.sqrt(n)))))
    while c > 1 and c * 39 > n:
        c //= 2
    return c


def _method(method: str, n: int) -> str:
    if method not in _METHODS:
        raise ReseqError(f"unknown neighbour search {method!r}: choose from {', '.join(_METHODS)}")
    return method if method != "auto" else ("exact" if n <= EXACT_MAX else "ivf")


def _centred(S: np.ndarray) -> np.ndarray:
    return S - S.mean(axis=0, dtype=np.float64).astype(np.float32)


def _topk_rows(X: np.ndarray, rows: np.ndarray, kk: int, sq=None, block: int | None = None
               ) -> np.ndarray:
    """The ``kk`` rows of ``X`` nearest to each of ``X[rows]`` (self first), in blocks of
    :data:`BLOCK` queries: the same arithmetic in this process and in a Dask task."""
    import torch

    block = block or BLOCK
    T = torch.from_numpy(X)
    if sq is None:
        sq = (T * T).sum(dim=1)
    out = np.empty((len(rows), kk), np.int64)
    for a in range(0, len(rows), block):
        qi = torch.from_numpy(np.asarray(rows[a:a + block], np.int64))
        d2 = sq[qi, None] + sq[None, :] - 2.0 * (T[qi] @ T.T)
        d2[torch.arange(len(qi)), qi] = -float("inf")  # self first, then dropped
        out[a:a + len(qi)] = torch.topk(d2, kk, dim=1, largest=False, sorted=True).indices.numpy()
    return out


def _fallback_block(n: int) -> int:
    """Query rows per block of an exact scan over ``n`` columns outside the exact search
    (a few rows left by the index): at most 2^26 floats (256 MB) a block."""
    return max(8, min(BLOCK, (1 << 26) // max(n, 1)))


def _task(X: np.ndarray, a: int, b: int, kk: int, block: int) -> np.ndarray:
    return _topk_rows(X, np.arange(a, b), kk, block=block)


def _exact_search(S: np.ndarray, k: int, show: bool, scheduler: str | None) -> np.ndarray:
    import torch

    n = len(S)
    X = _centred(S)
    kk = min(k + 1, n)
    idx = np.empty((n, kk), np.int64)
    if scheduler is None:
        T = torch.from_numpy(X)
        sq = (T * T).sum(dim=1)
        starts = range(0, n, BLOCK)
        for a in _progress(starts, "neighbours", total=len(starts),
                           enabled=show and len(starts) > 4, unit="block"):
            b = min(n, a + BLOCK)
            idx[a:b] = _topk_rows(X, np.arange(a, b), kk, sq)
    else:
        from distributed import as_completed

        from ..sketches import _dask_client

        step = BLOCK * TASK_BLOCKS
        with _dask_client(scheduler) as client:
            [shared] = client.scatter([X], broadcast=True)
            futures = [client.submit(_task, shared, a, min(n, a + step), kk, BLOCK,
                                     pure=False)
                       for a in range(0, n, step)]
            where = {f.key: a for f, a in zip(futures, range(0, n, step))}
            for fut in _progress(as_completed(futures, loop=client.loop),
                                 f"neighbours ({scheduler})", total=len(futures), enabled=show,
                                 unit="task"):
                part = fut.result()
                a = where[fut.key]
                idx[a:a + len(part)] = part
    return idx[:, 1:kk]


class _Index:
    """The k-means cells of the sketches (faiss, lazily imported, seeded) and, per cell, the
    :data:`NPROBE` cells nearest to its centroid (itself first): a query is compared exactly
    (float32 GEMM, as the exact search) with every sketch of the cells its cell probes. Rows
    with fewer than ``k`` candidates are completed by the exact search."""

    def __init__(self, S: np.ndarray, show: bool = False):
        import faiss

        n, d = S.shape
        self.S, self.n = S, n
        self.mean = S.mean(axis=0, dtype=np.float64).astype(np.float32)
        self.nlist = _nlist(n)
        take = min(n, 64 * self.nlist)  # k-means on a seeded sample, 64 points a cell
        sample = np.sort(np.random.default_rng(0).choice(n, take, replace=False))
        km = faiss.Kmeans(d, self.nlist, niter=10, seed=1234, max_points_per_centroid=64,
                          verbose=False)
        km.train(S[sample] - self.mean)
        self.cell = np.empty(n, np.int64)
        starts = range(0, n, _SEARCH_CHUNK)
        for a in _progress(starts, "cells", total=len(starts), enabled=show and n > 10 ** 5,
                           unit="chunk"):
            self.cell[a:a + _SEARCH_CHUNK] = km.index.search(S[a:a + _SEARCH_CHUNK]
                                                             - self.mean, 1)[1][:, 0]
        self.budget = min(NPROBE, self.nlist) * n / self.nlist  # sketches a cell compares with
        cents = self._split(km.centroids)
        self.nprobe = min(NPROBE, self.nlist)
        flat = faiss.IndexFlatL2(d)
        flat.add(cents)
        near = flat.search(cents, min(self.nprobe + 1, self.nlist))[1]
        self.probe = np.empty((self.nlist, self.nprobe), np.int64)
        for c in range(self.nlist):  # itself first (identical centroids may come before it)
            self.probe[c] = np.concatenate([[c], near[c][near[c] != c]])[:self.nprobe]
        self.by = np.argsort(self.cell, kind="stable")
        self.bounds = np.searchsorted(self.cell[self.by], np.arange(self.nlist + 1))

    def _split(self, cents: np.ndarray) -> np.ndarray:
        """Split every cell of more than :data:`SPLIT` average cells' worth of sketches by a
        k-means of its own (seeded; again while a part stays that large); returns all centroids.
        A cell's cost is its size times its candidates': on 10^6 video-like sketches k-means
        left cells of up to 66 average cells (shots its centroids missed, gathered by the
        nearest one), five times the comparisons of even cells."""
        import faiss

        d = cents.shape[1]
        mean = self.n / self.nlist
        cents = np.array(cents, np.float32)
        todo = [int(c) for c in np.flatnonzero(np.bincount(self.cell, minlength=self.nlist)
                                                > SPLIT * mean)]
        while todo:
            c = todo.pop(0)
            mem = np.flatnonzero(self.cell == c)
            parts = int(np.ceil(len(mem) / mean))
            take = mem if len(mem) <= 64 * parts else np.sort(
                np.random.default_rng(c).choice(mem, 64 * parts, replace=False))
            km = faiss.Kmeans(d, parts, niter=10, seed=1234 + c, max_points_per_centroid=64,
                              verbose=False)
            km.train(self.S[take] - self.mean)
            sub = km.index.search(self.S[mem] - self.mean, 1)[1][:, 0]
            ids = np.concatenate([[c], self.nlist + np.arange(parts - 1)])
            self.cell[mem] = ids[sub]
            cents[c] = km.centroids[0]
            cents = np.concatenate([cents, km.centroids[1:]])
            self.nlist += parts - 1
            sizes = np.bincount(sub, minlength=parts)
            todo += [int(ids[j]) for j in np.flatnonzero((sizes > SPLIT * mean)
                                                         & (sizes < len(mem)))]
        return cents

    def members(self, c: int) -> np.ndarray:
        return self.by[self.bounds[c]:self.bounds[c + 1]]

    def candidates(self, c: int) -> np.ndarray:
        """The members of cell ``c`` (first) and of its nearest cells, nearest first, up to
        ``NPROBE`` cells or until they hold ``NPROBE`` average cells' worth of sketches (k-means
        cells are uneven: a large cell compared with large neighbours would cost quadratically)."""
        budget = self.budget
        parts, size = [], 0
        for p in self.probe[c]:
            if parts and size >= budget:
                break
            parts.append(self.members(p))
            size += len(parts[-1])
        return np.concatenate(parts)

    def _cells(self, show: bool, desc: str):
        return _progress(range(self.nlist), desc, total=self.nlist,
                         enabled=show and self.n > 10 ** 5, unit="cell")

    def _blocks(self, rows: np.ndarray, cols: np.ndarray):
        """(start, a block of ``rows`` x ``cols``: float32 squared distances less each row's own
        squared norm, which ranks a row's columns as the distances do: ``||c||^2 - 2 q.c`` in
        one fused GEMM), centred as in the exact search; the candidates gathered once, at most
        2^24 floats a block."""
        import torch

        C = torch.from_numpy(self.S[cols] - self.mean)
        csq = (C * C).sum(dim=1)[None, :]
        step = max(8, min(BLOCK, (1 << 24) // max(len(cols), 1)))
        for a in range(0, len(rows), step):
            Q = torch.from_numpy(self.S[rows[a:a + step]] - self.mean)
            yield a, torch.addmm(csq, Q, C.T, alpha=-2.0)

    def search(self, k: int, show: bool = False) -> np.ndarray:
        import torch

        n, kk = self.n, k + 1
        idx = np.full((n, k), -1, np.int64)
        for c in self._cells(show, "neighbours (cells)"):
            own = self.members(c)
            cols = self.candidates(c)
            m = min(kk, len(cols))
            for a, d2 in self._blocks(own, cols):
                rows = own[a:a + len(d2)]
                d2[torch.arange(len(rows)), torch.arange(a, a + len(rows))] = -float("inf")  # self
                top = torch.topk(d2, m, dim=1, largest=False, sorted=True).indices.numpy()
                idx[rows, :m - 1] = cols[top[:, 1:]]
        short = np.flatnonzero((idx < 0).any(axis=1))
        if len(short):
            idx[short] = _topk_rows(_centred(self.S), short, min(kk, n),
                                    block=_fallback_block(n))[:, 1:]
        return idx

    def outside(self, queries: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest row of another label than each query's among the cells its cell probes
        (-1 where they hold none)."""
        import torch

        best = np.full(len(queries), -1, np.int64)
        qc = self.cell[queries]
        o = np.argsort(qc, kind="stable")
        cuts = np.flatnonzero(np.diff(qc[o])) + 1
        lab = torch.from_numpy(labels)
        for grp in np.split(o, cuts):
            if not len(grp):
                continue
            c = qc[grp[0]]
            cols = self.candidates(c)
            for a, d2 in self._blocks(queries[grp], cols):
                g = grp[a:a + len(d2)]
                d2.masked_fill_(lab[queries[g]][:, None] == lab[cols][None, :], float("inf"))
                j = torch.argmin(d2, dim=1).numpy()
                ok = np.isfinite(d2[torch.arange(len(g)), j].numpy())
                best[g[ok]] = cols[j[ok]]
        return best, None


def _knn(S: np.ndarray, k: int, show: bool, method: str, scheduler: str | None):
    S = np.ascontiguousarray(S, dtype=np.float32)
    n = len(S)
    if not 1 <= k <= n - 1:
        raise ReseqError(f"k must be between 1 and N - 1 = {n - 1}, got {k}")
    method = _method(method, n)
    index = None
    if method == "exact":
        scheduler = scheduler or os.environ.get("RESEQ_DASK_SCHEDULER") or None
        idx = _exact_search(S, k, show, scheduler)
    else:
        index = _Index(S, show)
        idx = index.search(k, show)
    rows = np.repeat(np.arange(n), k)
    dist = _exact(S, rows, idx.ravel()).reshape(n, k)
    o = np.lexsort((idx, dist), axis=1)
    return np.take_along_axis(idx, o, axis=1), np.take_along_axis(dist, o, axis=1), index


def knn(S: np.ndarray, k: int, show: bool = False, method: str = "auto",
        scheduler: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row of ``S``: (idx (N, k) int64, dist (N, k)
    float64), each row sorted by distance then index.

    ``method``: ``"exact"`` (exact up to float32 ranking of distances that differ by less than
    about 1e-6 of the sketches' spread), ``"ivf"`` (approximate: k-means cells, see the module
    doc for its measured recall) or ``"auto"`` (exact up to :data:`EXACT_MAX` rows). ``scheduler``:
    a Dask scheduler's ``tcp://HOST:PORT`` for the exact search (default
    ``$RESEQ_DASK_SCHEDULER``, else in this process); the index always runs here."""
    idx, dist, _ = _knn(S, k, show, method, scheduler)
    return idx, dist


def nearest_outside(S: np.ndarray, queries: np.ndarray, labels: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """For each row index in ``queries``, its nearest row with a different ``labels`` value,
    by the exact blocked search: (idx, dist float64)."""
    return _outside(S, queries, labels, None)


def _outside(S, queries, labels, index):
    import torch

    S = np.ascontiguousarray(S, dtype=np.float32)
    queries = np.asarray(queries, np.int64)
    labels = np.asarray(labels, np.int64)
    best = np.full(len(queries), -1, np.int64)
    if index is not None:
        best = index.outside(queries, labels)[0]
    rest = np.flatnonzero(best < 0)
    if len(rest):
        X = torch.from_numpy(_centred(S))
        sq = (X * X).sum(dim=1)
        lab = torch.from_numpy(labels)
        step = BLOCK if index is None else _fallback_block(len(S))
        for a in range(0, len(rest), step):
            qi = torch.from_numpy(queries[rest[a:a + step]])
            d2 = sq[qi, None] + sq[None, :] - 2.0 * (X[qi] @ X.T)
            d2[lab[qi, None] == lab[None, :]] = float("inf")
            best[rest[a:a + step]] = torch.argmin(d2, dim=1).numpy()
    return best, _exact(S, queries, best)


def knn_graph(S: np.ndarray, k: int = 10, show: bool = False, method: str = "auto",
              scheduler: str | None = None):
    """The symmetrised, connected k-nearest-neighbour graph of the sketches ``S``, as a
    :class:`~reseq.graph.sparse.SparseDistances` (its ``graph`` holds the sketch distances).
    ``method`` and ``scheduler`` as for :func:`knn`."""
    from scipy.sparse.csgraph import connected_components

    from .sparse import ZERO, SparseDistances

    S = np.ascontiguousarray(S, dtype=np.float32)
    n = len(S)
    if S.ndim != 2 or n < 2:
        raise ReseqError(f"sketches must be an (N, d) array with N >= 2, got shape {S.shape}")
    if not np.isfinite(S).all():
        raise ReseqError("sketches contain NaN or infinite values")
    k = int(min(k, n - 1))
    idx, dist, index = _knn(S, k, show, method, scheduler)
    rows = np.repeat(np.arange(n), k)
    r, c, w = [rows], [idx.ravel()], [dist.ravel()]
    near = np.full(n, -1, np.int64)  # each node's nearest outside its component, while it is
    near_d = np.zeros(n)
    while True:
        G = _sym(r, c, w, n, ZERO)
        count, labels = connected_components(G, directed=False)
        if count == 1:
            break
        sizes = np.bincount(labels)
        queries = np.flatnonzero(labels != int(np.argmax(sizes)))
        if index is not None or len(queries) > OUTSIDE_EXACT:
            queries = _sample(queries, labels[queries], OUTSIDE_SAMPLE)
        ask = queries[(near[queries] < 0) | (labels[np.maximum(near[queries], 0)]
                                             == labels[queries])]
        near[ask], near_d[ask] = _outside(S, ask, labels, index)
        nd = near_d[queries]
        # each small component's shortest edge out (ties: lowest distance, then indices)
        o = np.lexsort((near[queries], queries, nd, labels[queries]))
        lq = labels[queries][o]
        first = np.concatenate([[True], lq[1:] != lq[:-1]])
        pick = o[first]
        r.append(queries[pick])
        c.append(near[queries][pick])
        w.append(nd[pick])
    del index
    return SparseDistances(S, G, neighbours=(idx, dist))


def _sample(queries: np.ndarray, lab: np.ndarray, m: int) -> np.ndarray:
    """At most ``m`` of each label's ``queries`` (sorted), evenly spaced."""
    o = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[o])) + 1
    keep = []
    for grp in np.split(o, cuts):
        keep.append(grp if len(grp) <= m else grp[np.linspace(0, len(grp) - 1, m).astype(np.intp)])
    return np.sort(queries[np.concatenate(keep)])


def _sym(r, c, w, n, zero):
    """CSR of the undirected edges (r, c, w), one entry per direction; zero weights as ``zero``."""
    import scipy.sparse as sp

    rr, cc, ww = np.concatenate(r), np.concatenate(c), np.concatenate(w)
    a, b = np.concatenate([rr, cc]), np.concatenate([cc, rr])
    _, keep = np.unique(a * n + b, return_index=True)
    ww = np.concatenate([ww, ww])[keep]
    return sp.csr_matrix((np.where(ww > 0, ww, zero), (a[keep], b[keep])), shape=(n, n))
