"""2-D layouts of a collection on its perceptual manifold: where each frame is drawn.

A layout is data, not a picture: :func:`layout` returns a :class:`Layout` with one position per
frame in the unit square (x to the right, y *downwards*, the screen's convention) and the edges
worth drawing, so that every front end (the PNG/SVG/HTML of ``reseq layout``, the PNG of
``reseq inbetween --mst-plot``, the studio's map) draws the same thing. Paper §5.4.1: "placing
perceptually similar images next to each other can improve human image retrieval tasks".

Styles:

- ``"linear"`` (paper Fig. 10): the shortest Hamiltonian path (:func:`reseq.graph.order`) as a
  strip of cells wrapping into rows, *serpentine* (every other row runs right to left), so
  that the frames at the end of one row and the start of the next stay neighbours. Its edges
  are the path's steps.
- ``"radial"`` (paper Fig. 9): smooth sequences radiating from a shared centre frame, the
  medoid (the frame with the smallest total distance to all others). The minimum spanning
  tree rooted there is cut into chains by long-path decomposition (each chain follows its
  tallest subtree; the other subtrees start chains of their own); each chain is a *spoke*: a
  smooth sequence (every step a tree edge) ordered outwards, drawn on its own ray, one frame
  per ring, the rays in depth-first order so that chains off the same limb sit side by side.
  The innermost ring is just large enough for one frame per spoke. ``spokes`` lists them and
  ``centre`` is the centre frame. We chose spokes over concentric rings of the Hamiltonian
  cycle because rings keep only the frames along a ring close: frames on the next ring
  inwards or outwards are unrelated, whereas neighbouring spokes branch off the same limb of
  the tree (the neighbourhood scores in ``benchmarks/layouts.py``).
- ``"grid"``: every frame in a cell of a near-square grid (``grid_shape`` rows x columns,
  ``cells`` the (row, column) of each frame), perceptually close frames in neighbouring cells:
  the ``"mst"`` positions (or, with ``init="tsne"``, a t-SNE of D) snapped to the grid by
  linear assignment (:func:`scipy.optimize.linear_sum_assignment`, the way image-browsing tools
  make grids from an embedding; above 2,000 frames by recursive median splits, as fast and
  as good there), then improved by moving frames next to their nearest frames while that
  lowers the neighbourhood score (a compiled kernel).
- ``"mst"``: the minimum spanning tree (:func:`reseq.graph.minimum_spanning_tree`) laid out by
  stress on tree hop counts capped as ``min(h, 4 + sqrt(h))`` (long chains fold into the
  square instead of running off in a line): pivot MDS (classical MDS through 64 pivot frames,
  Brandes & Pich 2006), refined up to 200 frames by stress majorization (the Kamada-Kawai
  energy) in numpy: about 3 s at 5,000 frames with the tree itself, where networkx's spring
  layout took 99 s (5.8 s at 1,000) and its Kamada-Kawai about two seconds already at 100.
  Its edges are the tree's. This is the map on which the paper's animator picks key-frames (Fig. 1).

Each layout carries a **neighbourhood score**: the mean distance D between the frames it
shows as neighbours (``neighbours``, pairs of frames): consecutive cells of the strip for
``linear``, the 4-neighbour cells for ``grid``, each frame's 4 nearest frames in the plane for
``mst`` and ``radial``. Lower is better. :func:`neighbourhood_score` computes it for any
rearrangement of the frames over the same places, :func:`random_score` its expected value over
random rearrangements (the mean of all off-diagonal distances), and :func:`tsne_score` for a
2-D t-SNE of D snapped to the same places (slow: a benchmark reference, not part of
:func:`layout`).

>>> import numpy as np
>>> x = np.array([0.0, 1.0, 2.0, 10.0])
>>> lay = layout(np.abs(x[:, None] - x[None, :]), "mst")
>>> lay.positions.shape, bool(lay.positions.min() >= 0), bool(lay.positions.max() <= 1)
((4, 2), True, True)
>>> sorted(lay.edges)
[(0, 1), (1, 2), (2, 3)]
>>> lin = layout(np.abs(x[:, None] - x[None, :]), "linear")
>>> lin.grid_shape, lin.cells.tolist()
((2, 2), [[0, 0], [0, 1], [1, 1], [1, 0]])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ReseqError

__all__ = [
    "STYLES",
    "Layout",
    "grid_shape",
    "layout",
    "neighbourhood_score",
    "random_score",
    "tree_positions",
    "tsne_score",
]

STYLES = ("linear", "radial", "grid", "mst")

#: each frame's nearest frames in the plane that count as its neighbours (mst, radial)
PLANE_NEIGHBOURS = 4


@dataclass
class Layout:
    """Positions of N frames in the unit square and the edges drawn between them.

    ``positions``: (N, 2) float, x right and y down, both in [0, 1]. ``edges``: pairs (i, j).
    ``style``: the style that made it. ``neighbours``: (M, 2) pairs of frames the layout puts
    next to each other; ``score``: the mean D over them (lower is better). ``grid_shape``
    (rows, columns) and ``cells`` ((N, 2) int, row and column of each frame) for the styles
    that place frames in cells (``linear``, ``grid``); ``order``: the strip's frame order
    (``linear``); ``centre`` and ``spokes`` (frame sequences ordered outwards, the centre not included) for
    ``radial``.
    """

    style: str
    positions: np.ndarray
    edges: list[tuple[int, int]] = field(default_factory=list)
    neighbours: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.intp))
    score: float = float("nan")
    grid_shape: tuple[int, int] | None = None
    cells: np.ndarray | None = None
    order: np.ndarray | None = None
    centre: int | None = None
    spokes: list[np.ndarray] | None = None


# ---------------------------------------------------------------------------------------------
# tree drawing


def _tree_graph(n: int, edges: Sequence[tuple[int, ...]]):
    from scipy.sparse import coo_matrix

    rows = [e[0] for e in edges] + [e[1] for e in edges]
    cols = [e[1] for e in edges] + [e[0] for e in edges]
    return coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()


def _capped(hops: np.ndarray) -> np.ndarray:
    finite = np.isfinite(hops)
    if not finite.all():  # a forest, not a tree
        hops = np.where(finite, hops, hops[finite].max() + 1)
    return np.minimum(hops, 4 + np.sqrt(hops))


def _pivot_mds(g, n: int, pivots: int = 64) -> np.ndarray:
    """Pivot MDS (Brandes & Pich 2006) of capped hop counts: BFS from ``pivots`` frames chosen
    farthest-first, classical MDS of the (n x k) distances through their top singular vectors."""
    from scipy.sparse.csgraph import shortest_path

    k = min(pivots, n)
    chosen = [0]
    far = np.full(n, np.inf)
    C = np.empty((n, k))
    for j in range(k):
        d = _capped(shortest_path(g, directed=False, unweighted=True, indices=chosen[j]))
        C[:, j] = d
        far = np.minimum(far, d)
        if j + 1 < k:
            chosen.append(int(np.argmax(far)))
    C2 = C**2
    B = -0.5 * (C2 - C2.mean(axis=0) - C2.mean(axis=1, keepdims=True) + C2.mean())
    U, S, _ = np.linalg.svd(B, full_matrices=False)
    return U[:, :2] * S[:2]


def _unit(pos: np.ndarray) -> np.ndarray:
    """Shift and scale (keeping the aspect) into the unit square."""
    pos = pos - pos.min(axis=0)
    return pos / max(float(pos.max()), 1e-12)


def _stress(X: np.ndarray, d: np.ndarray, iters: int) -> np.ndarray:
    """Stress majorization (Gansner, Koren & North 2004; the Kamada-Kawai energy, weights
    ``d^-2``) by its localized (Jacobi) update, from positions ``X``, on target distances ``d``."""
    with np.errstate(divide="ignore"):
        W = np.where(d > 0, 1.0 / np.maximum(d, 1e-300) ** 2, 0.0)
    np.fill_diagonal(W, 0.0)
    wsum = W.sum(axis=1)[:, None]
    Wd = W * d
    for _ in range(iters):
        dx = X[:, 0, None] - X[None, :, 0]
        dy = X[:, 1, None] - X[None, :, 1]
        dist = np.hypot(dx, dy)
        dist[dist < 1e-12] = 1e-12
        C = Wd / dist
        np.fill_diagonal(C, 0.0)
        X = (W @ X + X * C.sum(axis=1)[:, None] - C @ X) / wsum
    return X


def tree_positions(n: int, edges: Sequence[tuple[int, ...]], seed: int = 0) -> np.ndarray:
    """Unit-square positions of a tree (or forest) on ``n`` nodes given as ``(i, j[, w])`` rows:
    pivot MDS of capped hop counts, refined up to 200 nodes by 100 rounds of stress
    majorization (the Kamada-Kawai energy). Above 200 the refinement costs seconds and, on the
    benchmark's real frames, places fewer similar frames side by side than pivot MDS alone
    (``seed`` is kept for compatibility: all of it is deterministic)."""
    from scipy.sparse.csgraph import shortest_path

    if n == 1:
        return np.full((1, 2), 0.5)
    g = _tree_graph(n, edges)
    X = _pivot_mds(g, n)
    if n <= 200:
        X = _stress(X, _capped(shortest_path(g, directed=False, unweighted=True)), 100)
    return _unit(X)


def _radial(A: np.ndarray, tree) -> tuple[np.ndarray, int, list[np.ndarray], list]:
    """Spokes from the medoid: positions, centre, spokes (outwards), edges to draw."""
    from scipy.sparse.csgraph import breadth_first_order

    n = len(A)
    centre = int(np.argmin(A.sum(axis=1)))
    if n == 1:
        return np.full((1, 2), 0.5), centre, [], []
    g = _tree_graph(n, tree)
    order, pred = breadth_first_order(g, centre, directed=False, return_predecessors=True)
    children: list[list[int]] = [[] for _ in range(n)]
    for v in order[1:]:
        children[pred[v]].append(int(v))
    height = np.zeros(n, dtype=np.intp)
    for v in order[::-1]:
        if children[v]:
            height[v] = 1 + max(height[c] for c in children[v])
    # long-path decomposition: each chain follows its tallest child; other children start
    # chains of their own, listed depth first so that chains off one limb sit side by side
    spokes: list[np.ndarray] = []
    stack = [(c, True) for c in sorted(children[centre], key=lambda c: height[c])]
    while stack:
        v, _from_centre = stack.pop()
        chain = [v]
        while children[chain[-1]]:
            kids = sorted(children[chain[-1]], key=lambda c: -height[c])
            stack.extend((c, False) for c in reversed(kids[1:]))
            chain.append(kids[0])
        spokes.append(np.array(chain, dtype=np.intp))
    k = len(spokes)
    r0 = max(1.0, k / (2 * math.pi))  # the first ring holds one frame per spoke, 1 unit apart
    pos = np.zeros((n, 2))
    edges: list[tuple[int, int]] = []
    for j, sp in enumerate(spokes):
        ang = 2 * math.pi * j / k - math.pi / 2
        rad = r0 + np.arange(len(sp))
        pos[sp] = np.c_[rad * math.cos(ang), rad * math.sin(ang)]
        if pred[sp[0]] == centre:
            edges.append((centre, int(sp[0])))
        edges += [(int(a), int(b)) for a, b in itertools.pairwise(sp)]
    return _unit(pos), centre, spokes, edges


# ---------------------------------------------------------------------------------------------
# cells


def grid_shape(n: int, aspect: float = 1.0) -> tuple[int, int]:
    """(rows, columns) of a near-square grid for ``n`` cells of width/height ``aspect``.

    >>> grid_shape(10), grid_shape(12, aspect=16 / 9)
    ((3, 4), (4, 3))
    """
    cols = max(1, math.ceil(math.sqrt(n / max(aspect, 1e-6))))
    return math.ceil(n / cols), cols


def _cell_positions(cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape
    x = cells[:, 1] / (cols - 1) if cols > 1 else np.full(len(cells), 0.5)
    y = cells[:, 0] / (rows - 1) if rows > 1 else np.full(len(cells), 0.5)
    return np.c_[x, y].astype(float)


def _grid_neighbours(cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape
    at = np.full((rows, cols), -1, dtype=np.intp)
    at[cells[:, 0], cells[:, 1]] = np.arange(len(cells))
    pairs = [np.c_[at[:, :-1].ravel(), at[:, 1:].ravel()],
             np.c_[at[:-1, :].ravel(), at[1:, :].ravel()]]
    p = np.concatenate(pairs)
    return p[(p >= 0).all(axis=1)]


def _snap(points: np.ndarray, shape: tuple[int, int], exact_max: int = 2000) -> np.ndarray:
    """Assign each point to its own cell of the grid: the least total squared displacement by
    linear assignment (:func:`scipy.optimize.linear_sum_assignment`) up to ``exact_max``
    points; above, recursive median splits (:func:`_split_snap`), since the assignment of
    clustered embeddings took 80 s at 5,000 points."""
    rows, cols = shape
    p = points - points.min(axis=0)
    p = p / np.maximum(p.max(axis=0), 1e-12)  # stretch to fill the grid
    if len(p) > exact_max:
        return _split_snap(p, shape)
    from scipy.optimize import linear_sum_assignment

    gy, gx = np.divmod(np.arange(rows * cols), cols)
    slots = np.c_[gx / max(cols - 1, 1), gy / max(rows - 1, 1)]
    cost = ((p[:, None, :] - slots[None, :, :]) ** 2).sum(axis=2)
    _, cell = linear_sum_assignment(cost)
    return np.c_[gy[cell], gx[cell]]


def _split_snap(p: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Grid cells by recursive bisection: split the region's longer side in two, send the
    points with the smaller x (or y) to the first half in proportion to its cells, recurse."""
    cells = np.zeros((len(p), 2), dtype=np.intp)
    stack = [(np.arange(len(p)), 0, shape[0], 0, shape[1])]
    while stack:
        idx, r0, r1, c0, c1 = stack.pop()
        if not len(idx):
            continue
        if (r1 - r0) * (c1 - c0) == 1:
            cells[idx] = (r0, c0)
            continue
        by_cols = (c1 - c0) >= (r1 - r0)
        if by_cols:
            mid = (c0 + c1) // 2
            cap_a, cap_b = (r1 - r0) * (mid - c0), (r1 - r0) * (c1 - mid)
        else:
            mid = (r0 + r1) // 2
            cap_a, cap_b = (mid - r0) * (c1 - c0), (r1 - mid) * (c1 - c0)
        m = len(idx)
        na = int(np.clip(round(m * cap_a / (cap_a + cap_b)), m - cap_b, cap_a))
        key = p[idx, 0] if by_cols else p[idx, 1]
        o = idx[np.argsort(key, kind="stable")]
        if by_cols:
            stack += [(o[:na], r0, r1, c0, mid), (o[na:], r0, r1, mid, c1)]
        else:
            stack += [(o[:na], r0, mid, c0, c1), (o[na:], mid, r1, c0, c1)]
    return cells


def _refine_grid(A: np.ndarray, cells: np.ndarray, shape: tuple[int, int],
                 rounds: int = 30, k: int = 8) -> np.ndarray:
    """Improve a grid by moves: frame v into (or swapped with the frame of) a cell next to one
    of its ``k`` nearest frames, whenever that lowers the sum of D over 4-neighbour cells; up
    to ``rounds`` sweeps (a compiled kernel, :mod:`reseq._layout_kernels`)."""
    from ._layout_kernels import _DC, _DR, refine_grid
    from .sequences import _neighbours

    rows, cols = shape
    n = len(A)
    at = np.full((rows, cols), -1, dtype=np.int64)
    at[cells[:, 0], cells[:, 1]] = np.arange(n)
    cells = np.array(cells, dtype=np.int64)  # a copy: the kernel moves frames in place
    nb = np.ascontiguousarray(_neighbours(A, min(k, n - 1)), dtype=np.int64)
    refine_grid(np.ascontiguousarray(A), at, cells, nb, rounds, _DR, _DC)
    return cells.astype(np.intp)


# ---------------------------------------------------------------------------------------------
# scores


def _plane_neighbours(pos: np.ndarray, k: int = PLANE_NEIGHBOURS) -> np.ndarray:
    from scipy.spatial import cKDTree

    n = len(pos)
    if n < 2:
        return np.zeros((0, 2), dtype=np.intp)
    k = min(k, n - 1)
    _, idx = cKDTree(pos).query(pos, k=k + 1)
    i = np.repeat(np.arange(n), k)
    j = idx[:, 1:].reshape(-1)
    p = np.sort(np.c_[i, j], axis=1)
    return np.unique(p, axis=0)


def neighbourhood_score(D, lay: Layout, arrangement=None) -> float:
    """Mean D between the frames ``lay`` shows as neighbours; with ``arrangement`` (a
    permutation: the place of frame i goes to frame ``arrangement[i]``), the same for the
    frames rearranged over the same places."""
    A = np.asarray(D, dtype=float)
    p = lay.neighbours
    if not len(p):
        return 0.0
    if arrangement is not None:
        arr = np.asarray(arrangement, dtype=np.intp)
        p = arr[p]
    return float(A[p[:, 0], p[:, 1]].mean())


def random_score(D) -> float:
    """The expected neighbourhood score of a uniformly random arrangement, for every style:
    any two distinct places get a uniformly random pair of distinct frames, so it is the mean
    of the off-diagonal distances."""
    A = np.asarray(D, dtype=float)
    n = len(A)
    return float((A.sum() - np.trace(A)) / max(n * (n - 1), 1))


def tsne_positions(D, seed: int = 0) -> np.ndarray:
    """A 2-D t-SNE of D (scikit-learn, ``metric="precomputed"``, random init). scikit-learn
    squares a precomputed matrix, as it squares Euclidean distances; LPIPS (our D) is already a
    squared distance in the networks' scaled feature space, so it is given ``sqrt(D)``."""
    from sklearn.manifold import TSNE

    A = np.sqrt(np.maximum(np.asarray(D, dtype=float), 0.0))
    n = len(A)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    return TSNE(2, metric="precomputed", init="random", perplexity=perplexity,
                random_state=seed).fit_transform(A)


def _snap_to_places(points: np.ndarray, places: np.ndarray) -> np.ndarray:
    """Arrangement putting the points on the places with the least total squared displacement
    (both stretched to the unit square): frame ``arrangement[i]`` goes to place i."""
    from scipy.optimize import linear_sum_assignment

    def norm(p):
        p = p - p.min(axis=0)
        return p / np.maximum(p.max(axis=0), 1e-12)

    p, q = norm(points), norm(places)
    cost = ((q[:, None, :] - p[None, :, :]) ** 2).sum(axis=2)
    _, frame = linear_sum_assignment(cost)
    return frame


def tsne_score(D, lay: Layout, seed: int = 0) -> float:
    """The neighbourhood score of a 2-D t-SNE of D (:func:`tsne_positions`) snapped by linear
    assignment to the places of ``lay`` (its cells for ``linear`` and ``grid``)."""
    return neighbourhood_score(D, lay, _snap_to_places(tsne_positions(D, seed), lay.positions))


# ---------------------------------------------------------------------------------------------


def layout(D, style: str = "mst", *, seed: int = 0, path=None, aspect: float = 1.0,
           effort: float | None = None, init: str = "mst") -> Layout:
    """Lay out the frames of the distance matrix ``D`` (any symmetric non-negative N x N array,
    ``metric="precomputed"`` style) in the unit square; see the module docstring for the styles.

    ``path``: for ``linear``, a precomputed frame order (e.g. ``reseq.order(D).order``) to lay
    out instead of solving one; ``effort`` is passed to :func:`reseq.graph.order` when it is
    solved (default: 1 up to 500 frames, 0.25 above, which keeps 1,000 frames under two seconds;
    see ``benchmarks/layouts.py``). ``aspect``: the width / height of a thumbnail, so that grids
    come out near-square on the page. ``init``: for ``grid``, the 2-D positions snapped to the
    grid before the swaps: ``"mst"`` (default, fast) or ``"tsne"`` (:func:`tsne_positions`:
    a lower score, several times slower). ``seed``: as in :func:`reseq.graph.order` and t-SNE.
    """
    if style not in STYLES:
        raise ReseqError(f"unknown layout style {style!r}; choose one of {', '.join(STYLES)}")
    if init not in ("mst", "tsne"):
        raise ReseqError(f"init must be 'mst' or 'tsne', got {init!r}")
    from .graph import check_distance_matrix, minimum_spanning_tree

    A = check_distance_matrix(D, 1)
    n = len(A)
    if style == "linear":
        if path is None:
            from .graph import order

            eff = effort if effort is not None else (1.0 if n <= 500 else 0.25)
            seq = np.asarray(order(A, seed=seed, effort=eff).order, dtype=np.intp) if n > 1 \
                else np.zeros(1, dtype=np.intp)
        else:
            seq = np.asarray(getattr(path, "order", path), dtype=np.intp)
            if sorted(seq.tolist()) != list(range(n)):
                raise ReseqError(f"path must list each of the {n} frames once")
        shape = grid_shape(n, aspect)
        k = np.arange(n)
        r, c = np.divmod(k, shape[1])
        c = np.where(r % 2 == 1, shape[1] - 1 - c, c)
        cells = np.empty((n, 2), dtype=np.intp)
        cells[seq] = np.c_[r, c]
        pairs = np.c_[seq[:-1], seq[1:]]
        lay = Layout(style, _cell_positions(cells, shape), [tuple(map(int, p)) for p in pairs],
                     pairs, grid_shape=shape, cells=cells, order=seq)
    elif style == "radial":
        tree = minimum_spanning_tree(A)
        pos, centre, spokes, edges = _radial(A, tree)
        lay = Layout(style, pos, edges, _plane_neighbours(pos), centre=centre, spokes=spokes)
    else:
        tree = minimum_spanning_tree(A)
        pos = tree_positions(n, tree, seed=seed)
        edges = [(a, b) for a, b, _ in tree]
        if style == "mst":
            lay = Layout(style, pos, edges, _plane_neighbours(pos))
        else:
            shape = grid_shape(n, aspect)
            start = tsne_positions(A, seed) if init == "tsne" and n > 2 else pos
            cells = _refine_grid(A, _snap(start, shape), shape) if n > 1 else np.zeros((1, 2), int)
            lay = Layout(style, _cell_positions(cells, shape), [],
                         _grid_neighbours(cells, shape), grid_shape=shape, cells=cells)
    lay.score = neighbourhood_score(A, lay)
    return lay
