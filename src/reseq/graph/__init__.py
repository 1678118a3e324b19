"""Graph algorithms on a precomputed distance matrix (the perceptual manifold).

Every function takes ``D``, an N x N symmetric, non-negative matrix of distances between frames,
the way scikit-learn takes ``metric="precomputed"``. The triangle inequality is never assumed
(LPIPS is a squared distance) and exact zeros (duplicate frames) are real edges.

* :func:`order` — the shortest Hamiltonian path (paper eq. 5), free ends or fixed start / end;
* :func:`loop` — the shortest Hamiltonian cycle (eq. 6);
* :func:`minimum_spanning_tree` — Kruskal on the complete graph; :func:`inbetweens` — the MST
  path between consecutive key frames (paper §4.2);
* :func:`outliers` — frames far from their K nearest neighbours, thresholded at a quantile of a
  fitted generalized gamma distribution (paper §4.3).

Each also accepts a :class:`SparseDistances` (sketches and a k-nearest-neighbour candidate
graph, :mod:`reseq.graph.sparse`) instead of ``D``, for collections too large for an N x N
matrix; its distances are approximate (:mod:`reseq.sketches`).

>>> import numpy as np
>>> x = np.array([0.0, 2.0, 1.0, 3.0])
>>> D = np.abs(x[:, None] - x[None, :])
>>> order(D, start=0).order.tolist()
[0, 2, 1, 3]
"""

from __future__ import annotations

from .mst import Inbetweens, inbetweens, minimum_spanning_tree, tree_path
from .outliers import Outliers, knn_scores, outliers
from .sparse import SparseDistances
from .tsp import EXACT_MAX, Path, check_distance_matrix, loop, order, path_cost

__all__ = [
    "EXACT_MAX",
    "Inbetweens",
    "Outliers",
    "Path",
    "SparseDistances",
    "check_distance_matrix",
    "inbetweens",
    "knn_scores",
    "loop",
    "minimum_spanning_tree",
    "order",
    "outliers",
    "path_cost",
    "tree_path",
]
