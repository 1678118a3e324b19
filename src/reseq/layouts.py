"""2-D layouts of a collection on its perceptual manifold: where each frame is drawn.

A layout is data, not a picture: :func:`layout` returns a :class:`Layout` with one position per
frame in the unit square (x to the right, y *downwards*, the screen's convention) and the edges
worth drawing, so that every front end (the PNG of ``reseq inbetween --mst-plot``, the studio's
map) draws the same thing.

Styles:

- ``"mst"``: the minimum spanning tree (:func:`reseq.graph.minimum_spanning_tree`) laid out by
  Kamada-Kawai on tree hop counts capped as ``min(h, 4 + sqrt(h))`` (long chains fold into the
  square instead of running off in a line); a spring layout above 200 frames. Its edges are the
  tree's. This is the map on which the paper's animator picks key-frames (Fig. 1).

>>> import numpy as np
>>> x = np.array([0.0, 1.0, 2.0, 10.0])
>>> lay = layout(np.abs(x[:, None] - x[None, :]), "mst")
>>> lay.positions.shape, bool(lay.positions.min() >= 0), bool(lay.positions.max() <= 1)
((4, 2), True, True)
>>> sorted(lay.edges)
[(0, 1), (1, 2), (2, 3)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ReseqError

__all__ = ["STYLES", "Layout", "layout", "tree_positions"]

STYLES = ("mst",)


@dataclass
class Layout:
    """Positions of N frames in the unit square and the edges drawn between them.

    ``positions``: (N, 2) float, x right and y down, both in [0, 1]. ``edges``: pairs (i, j).
    ``style``: the style that made it.
    """

    style: str
    positions: np.ndarray
    edges: list[tuple[int, int]] = field(default_factory=list)


def tree_positions(n: int, edges: Sequence[tuple[int, ...]], seed: int = 0) -> np.ndarray:
    """Unit-square positions of a tree (or forest) on ``n`` nodes given as ``(i, j[, w])`` rows:
    Kamada-Kawai on capped hop counts up to 200 nodes, a seeded spring layout above."""
    import networkx as nx
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    if n == 1:
        return np.full((1, 2), 0.5)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((e[0], e[1]) for e in edges)
    if n <= 200:
        rows = [e[0] for e in edges] + [e[1] for e in edges]
        cols = [e[1] for e in edges] + [e[0] for e in edges]
        g = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
        hops = shortest_path(g, directed=False, unweighted=True)
        hops[~np.isfinite(hops)] = hops[np.isfinite(hops)].max() + 1  # a forest, not a tree
        dist = np.minimum(hops, 4 + np.sqrt(hops))
        lay = nx.kamada_kawai_layout(graph, dist={i: dict(enumerate(r)) for i, r in
                                                  enumerate(dist)})
    else:
        lay = nx.spring_layout(graph, seed=seed, iterations=100)
    pos = np.array([lay[i] for i in range(n)], dtype=float)
    pos = pos - pos.min(axis=0)
    return pos / max(float(pos.max()), 1e-12)


def layout(D, style: str = "mst", *, seed: int = 0) -> Layout:
    """Lay out the frames of the distance matrix ``D`` (any symmetric non-negative N x N array,
    ``metric="precomputed"`` style) in the unit square; see the module docstring for the styles.
    """
    if style not in STYLES:
        raise ReseqError(f"unknown layout style {style!r}; choose one of {', '.join(STYLES)}")
    from .graph import minimum_spanning_tree

    tree = minimum_spanning_tree(D)
    n = len(tree) + 1
    return Layout(style, tree_positions(n, tree, seed=seed), [(a, b) for a, b, _ in tree])
