"""The candidate graph: the k nearest neighbours of every frame, from its sketch.

At scale (:mod:`reseq.sketches`) no N x N matrix is built: every algorithm works on the edges
between near frames. :func:`knn` finds each sketch's ``k`` nearest others **exactly** (for the
sketch distances) by a blocked matrix product: queries in blocks of :data:`BLOCK` rows against
all sketches (float32 GEMM on centred sketches to rank, ``torch.topk`` per block), then the kept
distances recomputed in float64 from the differences, so a pair of identical sketches gets
exactly 0. Memory: the sketches plus one ``BLOCK x N`` float32 block. No approximate index is
used (an HNSW index would be faster at 10^6 frames, but its recall must be measured on real
frames first: on random vectors such indexes fail).

:func:`knn_graph` symmetrises the lists (an edge when either end lists the other) and makes the
graph connected: while it has several components, every component but the largest gets its
shortest edge to another component (Borůvka rounds, each one at least halving the count; the
nearest outside node is found by the same blocked search restricted to other components). The
result is a :class:`~reseq.graph.sparse.SparseDistances`.

>>> import numpy as np
>>> S = np.array([[0.0], [1.0], [3.0], [10.0]], np.float32)
>>> idx, dist = knn(S, 1)
>>> idx.ravel().tolist(), dist.ravel().tolist()
([1, 0, 1, 2], [1.0, 1.0, 4.0, 49.0])
"""

from __future__ import annotations

import numpy as np

from .._util import progress as _progress
from ..errors import ReseqError

__all__ = ["BLOCK", "knn", "knn_graph", "nearest_outside"]

#: Query rows per block of the exact search.
BLOCK = 512


def _exact(S: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``||S[rows] - S[cols]||^2`` in float64, pair by pair, in chunks (bounded memory)."""
    rows, cols = np.asarray(rows, np.intp).ravel(), np.asarray(cols, np.intp).ravel()
    out = np.empty(len(rows))
    for a in range(0, len(rows), chunk):
        diff = S[rows[a:a + chunk]].astype(np.float64) - S[cols[a:a + chunk]]
        out[a:a + chunk] = np.einsum("ij,ij->i", diff, diff)
    return out


def knn(S: np.ndarray, k: int, show: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row of ``S``: (idx (N, k) int64, dist (N, k)
    float64), each row sorted by distance then index. Exact up to float32 ranking of distances
    that differ by less than about 1e-6 of the sketches' spread."""
    import torch

    S = np.ascontiguousarray(S, dtype=np.float32)
    n = len(S)
    if not 1 <= k <= n - 1:
        raise ReseqError(f"k must be between 1 and N - 1 = {n - 1}, got {k}")
    X = torch.from_numpy(S - S.mean(axis=0, dtype=np.float64).astype(np.float32))
    sq = (X * X).sum(dim=1)
    kk = min(k + 1, n)
    idx = np.empty((n, k), np.int64)
    starts = range(0, n, BLOCK)
    for a in _progress(starts, "neighbours", total=len(starts), enabled=show and len(starts) > 4,
                       unit="block"):
        b = min(n, a + BLOCK)
        q = X[a:b]
        d2 = sq[a:b, None] + sq[None, :] - 2.0 * (q @ X.T)
        d2[torch.arange(b - a), torch.arange(a, b)] = -1.0  # self first, then dropped
        top = torch.topk(d2, kk, dim=1, largest=False, sorted=True).indices.numpy()
        idx[a:b] = top[:, 1:kk]
    rows = np.repeat(np.arange(n), k)
    dist = _exact(S, rows, idx.ravel()).reshape(n, k)
    o = np.lexsort((idx, dist), axis=1)
    return np.take_along_axis(idx, o, axis=1), np.take_along_axis(dist, o, axis=1)


def nearest_outside(S: np.ndarray, queries: np.ndarray, labels: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """For each row index in ``queries``, its nearest row with a different ``labels`` value:
    (idx, dist float64)."""
    import torch

    S = np.ascontiguousarray(S, dtype=np.float32)
    X = torch.from_numpy(S - S.mean(axis=0, dtype=np.float64).astype(np.float32))
    sq = (X * X).sum(dim=1)
    lab = torch.from_numpy(np.asarray(labels, np.int64))
    best = np.empty(len(queries), np.int64)
    for a in range(0, len(queries), BLOCK):
        qi = torch.from_numpy(np.asarray(queries[a:a + BLOCK], np.int64))
        d2 = sq[qi, None] + sq[None, :] - 2.0 * (X[qi] @ X.T)
        d2[lab[qi, None] == lab[None, :]] = float("inf")
        best[a:a + len(qi)] = torch.argmin(d2, dim=1).numpy()
    return best, _exact(S, np.asarray(queries), best)


def knn_graph(S: np.ndarray, k: int = 10, show: bool = False):
    """The symmetrised, connected k-nearest-neighbour graph of the sketches ``S``, as a
    :class:`~reseq.graph.sparse.SparseDistances` (its ``graph`` holds the sketch distances)."""
    from scipy.sparse.csgraph import connected_components

    from .sparse import ZERO, SparseDistances

    S = np.ascontiguousarray(S, dtype=np.float32)
    n = len(S)
    if S.ndim != 2 or n < 2:
        raise ReseqError(f"sketches must be an (N, d) array with N >= 2, got shape {S.shape}")
    if not np.isfinite(S).all():
        raise ReseqError("sketches contain NaN or infinite values")
    k = int(min(k, n - 1))
    idx, dist = knn(S, k, show)
    rows = np.repeat(np.arange(n), k)
    r, c, w = [rows], [idx.ravel()], [dist.ravel()]
    while True:
        G = _sym(r, c, w, n, ZERO)
        count, labels = connected_components(G, directed=False)
        if count == 1:
            break
        sizes = np.bincount(labels)
        queries = np.flatnonzero(labels != int(np.argmax(sizes)))
        near, nd = nearest_outside(S, queries, labels)
        # each small component's shortest edge out (ties: lowest distance, then indices)
        o = np.lexsort((near, queries, nd, labels[queries]))
        lq = labels[queries][o]
        first = np.concatenate([[True], lq[1:] != lq[:-1]])
        pick = o[first]
        r.append(queries[pick])
        c.append(near[pick])
        w.append(nd[pick])
    return SparseDistances(S, G, neighbours=(idx, dist))


def _sym(r, c, w, n, zero):
    """CSR of the undirected edges (r, c, w), one entry per direction; zero weights as ``zero``."""
    import scipy.sparse as sp

    rr, cc, ww = np.concatenate(r), np.concatenate(c), np.concatenate(w)
    a, b = np.concatenate([rr, cc]), np.concatenate([cc, rr])
    _, keep = np.unique(a * n + b, return_index=True)
    ww = np.concatenate([ww, ww])[keep]
    return sp.csr_matrix((np.where(ww > 0, ww, zero), (a[keep], b[keep])), shape=(n, n))
