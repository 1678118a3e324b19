"""Minimum spanning tree of the complete graph of frames, and key-frame in-betweens.

The paper (§4.2) generates in-betweens for two key frames by walking the minimum spanning tree of
the perceptual manifold from one to the other: the tree path uses only short steps, so it moves
smoothly through the frames that lie "between" the keys.

:func:`minimum_spanning_tree` runs Prim's algorithm on the dense matrix (O(N²) time, O(N)
extra memory, numpy-vectorised). Unlike ``scipy.sparse.csgraph.minimum_spanning_tree`` on a
dense array, it treats a distance of exactly 0 (duplicate frames) as a real, free edge. Ties are
broken by the lowest index, so the tree is deterministic.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ReseqError
from .tsp import _check_index, _is_sparse, check_distance_matrix

__all__ = ["Inbetweens", "inbetweens", "minimum_spanning_tree", "tree_path"]


def minimum_spanning_tree(D) -> list[tuple[int, int, float]]:
    """The minimum spanning tree of the complete graph on ``D``, as ``N - 1`` edges.

    Each edge is ``(parent, child, weight)`` in the order Prim's algorithm adds them, starting
    from frame 0 (so every ``parent`` appears before its ``child``). Zero distances are edges.

    >>> import numpy as np
    >>> x = np.array([0.0, 5.0, 1.0, 1.0])
    >>> minimum_spanning_tree(np.abs(x[:, None] - x[None, :]))
    [(0, 2, 1.0), (2, 3, 0.0), (2, 1, 4.0)]
    """
    if _is_sparse(D):  # exact MST of the candidate graph (reseq.graph.sparse)
        from .sparse import sparse_mst

        return sparse_mst(D)
    A = check_distance_matrix(D, 1)
    n = len(A)
    if n == 1:
        return []
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = A[0].copy()
    parent = np.zeros(n, dtype=np.intp)
    best[0] = np.inf
    edges: list[tuple[int, int, float]] = []
    for _ in range(n - 1):
        v = int(np.argmin(best))
        edges.append((int(parent[v]), v, float(A[parent[v], v])))
        in_tree[v] = True
        best[v] = np.inf
        row = A[v]
        closer = (row < best) & ~in_tree
        best[closer] = row[closer]
        parent[closer] = v
    return edges


def _adjacency(edges, n: int) -> list[list[int]]:
    adj: list[list[int]] = [[] for _ in range(n)]
    for u, v, _ in edges:
        adj[u].append(v)
        adj[v].append(u)
    return adj


def tree_path(edges: Sequence[tuple[int, int, float]], a: int, b: int,
              n: int | None = None) -> list[int]:
    """The unique path from ``a`` to ``b`` in a tree given as edges (both ends included)."""
    if n is None:
        n = 1 + max((max(u, v) for u, v, _ in edges), default=max(a, b))
    adj = _adjacency(edges, n)
    prev = [-1] * n
    prev[a] = a
    stack = [a]
    while stack:
        u = stack.pop()
        if u == b:
            break
        for v in adj[u]:
            if prev[v] < 0:
                prev[v] = u
                stack.append(v)
    if prev[b] < 0:
        raise ReseqError(f"frames {a} and {b} are not connected in the tree")
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]


@dataclass(frozen=True)
class Inbetweens:
    """In-betweens along the MST between consecutive key frames.

    ``path``: frame indices from the first key to the last, each key once at the joins;
    ``segments``: one array per pair of consecutive keys, both keys included; ``counts``: the
    number of in-betweens (frames strictly between the two keys) of each segment; ``cost``: the
    summed distance along ``path``; ``tree``: the MST edges used.
    """

    path: np.ndarray
    segments: tuple[np.ndarray, ...]
    counts: np.ndarray
    cost: float
    tree: list[tuple[int, int, float]]


def inbetweens(D, keys: Sequence[int], *,
               tree: Sequence[tuple[int, int, float]] | None = None) -> Inbetweens:
    """Concatenated MST paths between each pair of consecutive ``keys`` (paper §4.2).

    ``tree``: the minimum spanning tree of ``D`` (as :func:`minimum_spanning_tree` returns it)
    when the caller has it already, as an interactive front end answering clicks does; ``D`` is
    then trusted as that function validated it (only its shape is checked), so a call costs the
    tree walk and not O(N²).

    >>> import numpy as np
    >>> x = np.array([0.0, 4.0, 1.0, 3.0, 2.0])
    >>> ib = inbetweens(np.abs(x[:, None] - x[None, :]), [0, 1])
    >>> ib.path.tolist(), ib.counts.tolist()
    ([0, 2, 4, 3, 1], [3])
    """
    if _is_sparse(D):
        from .sparse import sparse_inbetweens

        return sparse_inbetweens(D, keys)
    if tree is None:
        A = check_distance_matrix(D, 2)
    else:
        A = np.asarray(D, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or len(tree) != len(A) - 1:
            raise ReseqError(f"tree has {len(tree)} edges; a spanning tree of the "
                             f"{A.shape[0]} frames of D has {A.shape[0] - 1}")
    keys = check_keys(keys, len(A))
    if tree is None:
        tree = minimum_spanning_tree(A)
    return along_tree(tree, keys, len(A), lambda path: float(A[path[:-1], path[1:]].sum()))


def check_keys(keys: Sequence[int], n: int) -> list[int]:
    """Key frames as indices of ``n`` frames: at least two, consecutive ones different."""
    keys = list(keys)
    if len(keys) < 2:
        raise ReseqError("in-betweens need at least two key frames")
    keys = [_check_index(k, n, "key") for k in keys]
    for a, b in itertools.pairwise(keys):
        if a == b:
            raise ReseqError(f"consecutive key frames must differ (frame {a} is repeated)")
    return keys


def along_tree(tree: Sequence[tuple[int, int, float]], keys: Sequence[int], n: int,
               cost) -> Inbetweens:
    """The tree paths between consecutive (checked) ``keys``, joined; ``cost(path)`` sums the
    distances along a path (dense or sparse distances alike)."""
    segs = [np.asarray(tree_path(tree, a, b, n), dtype=np.intp)
            for a, b in itertools.pairwise(keys)]
    path = np.concatenate([segs[0]] + [s[1:] for s in segs[1:]])
    counts = np.array([len(s) - 2 for s in segs], dtype=np.intp)
    return Inbetweens(path=path, segments=tuple(segs), counts=counts, cost=float(cost(path)),
                      tree=list(tree))
