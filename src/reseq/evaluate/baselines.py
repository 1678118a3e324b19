"""Distance matrices and path heuristics of the baselines the paper and today's practice use.

Every function takes frames as an (N, H, W, 3) uint8 array (one clip, one size) and returns a
symmetric (N, N) float64 matrix with a zero diagonal, or an order of frame indices:

- :func:`l2_matrix` — L2 between raw pixels in [0, 1] (eq. 8);
- :func:`ssim_matrix` — the SSIM distance (1 − SSIM) / 2 of :func:`skimage.metrics.structural_similarity`;
- :func:`manifold_matrices` — L2 in an LLE or Isomap embedding (eq. 10) for every (k, d) of a sweep.
  The expensive part (the kNN graph, the weights / geodesics and the eigen-decomposition) is done
  once per k with the largest d; the embedding of dimension d is the first d coordinates of it,
  which is what scikit-learn computes for ``n_components=d`` with the dense eigensolver (LLE: the
  eigenvectors 1..d of M; Isomap: the top-d kernel PCA components of the geodesic distances).
  Isomap's kernel PCA is done here (classical MDS on scikit-learn's geodesic matrix) because
  geodesics are not Euclidean: scikit-learn refuses when a requested component has a negative
  eigenvalue, we give it zero coordinates instead (identical otherwise, see the tests);
- :func:`greedy_chain` (nearest-neighbour chain) and :func:`two_opt` (segment reversals until no
  move shortens the path), the heuristics of image-sorting and frame-reconstruction scripts.

Short clips cannot take every setting: k is clamped to N − 2 neighbours and d to N − 1
dimensions (LLE: N − 2), so every setting is defined; the values used are reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from scipy.spatial.distance import cdist

from .._util import progress
from ..errors import ReseqError
from ..graph.tsp import path_cost

__all__ = [
    "D_RANGE",
    "K_RANGE",
    "greedy_chain",
    "l2_matrix",
    "manifold_embeddings",
    "manifold_matrices",
    "path_cost",
    "pixel_vectors",
    "ssim_matrix",
    "two_opt",
]

K_RANGE = tuple(range(2, 11))
D_RANGE = tuple(range(2, 21))


def _check(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 4 or array.shape[-1] != 3 or len(array) < 2:
        raise ReseqError(f"expected at least 2 RGB frames (N, H, W, 3), got shape {array.shape}")
    return array


def _finish(d: np.ndarray) -> np.ndarray:
    d = np.maximum((d + d.T) / 2.0, 0.0)
    np.fill_diagonal(d, 0.0)
    return d


def pixel_vectors(array: np.ndarray) -> np.ndarray:
    """Frames as flat float64 vectors in [0, 1] (N, H*W*3)."""
    array = _check(array)
    return array.reshape(len(array), -1).astype(np.float64) / 255.0


def l2_matrix(array: np.ndarray) -> np.ndarray:
    """Eq. 8: L2 distance between raw pixels scaled to [0, 1].

    >>> a = np.zeros((2, 2, 2, 3), np.uint8); a[1] = 255
    >>> float(l2_matrix(a)[0, 1])  # sqrt(12 values of 1)
    3.4641016151377544
    """
    x = pixel_vectors(array)
    return _finish(cdist(x, x))


def ssim_matrix(array: np.ndarray, show_progress: bool = False) -> np.ndarray:
    """SSIM distance (1 − SSIM) / 2 in [0, 1] between all pairs (RGB, 7×7 windows, scikit-image).

    >>> a = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    >>> d = ssim_matrix(a); bool(d[0, 0] == 0 and 0 < d[0, 1] <= 1 and d[0, 1] == d[1, 0])
    True
    """
    from skimage.metrics import structural_similarity

    array = _check(array)
    n = len(array)
    win = min(7, *array.shape[1:3])
    win -= 1 - win % 2
    d = np.zeros((n, n))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for i, j in progress(pairs, desc="ssim", total=len(pairs), enabled=show_progress):
        s = structural_similarity(array[i], array[j], channel_axis=-1, data_range=255,
                                  win_size=win)
        d[i, j] = d[j, i] = (1.0 - s) / 2.0
    return _finish(d)


def _classical_mds(geodesic: np.ndarray, d: int) -> np.ndarray:
    """Isomap's kernel PCA on geodesic distances, top ``d`` components; negative eigenvalues
    (geodesics are not Euclidean) give zero coordinates instead of scikit-learn's error."""
    g = np.asarray(geodesic, dtype=np.float64)
    n = len(g)
    h = np.eye(n) - 1.0 / n
    kernel = -0.5 * h @ (g * g) @ h
    vals, vecs = np.linalg.eigh((kernel + kernel.T) / 2.0)
    idx = np.argsort(vals)[::-1][:d]
    vals, vecs = vals[idx], vecs[:, idx]
    # scikit-learn's sign convention (svd_flip on eigenvectors): largest |entry| positive
    signs = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    return vecs * signs * np.sqrt(np.maximum(vals, 0.0))


def manifold_embeddings(array: np.ndarray, method: str, ks: Iterable[int] = K_RANGE,
                        d_max: int = max(D_RANGE)) -> Iterator[tuple[int, np.ndarray]]:
    """For each k, (k_used, embedding (N, d_used)) of an ``"lle"`` or ``"isomap"`` fit.

    The embedding's leading d coordinates are the embedding for dimension d (module docstring).
    """
    from sklearn.manifold import Isomap, LocallyLinearEmbedding

    if method not in ("lle", "isomap"):
        raise ReseqError(f"unknown manifold method {method!r}; use lle or isomap")
    x = pixel_vectors(array)
    n = len(x)
    if n < 4:
        raise ReseqError(f"{method} needs at least 4 frames, got {n}")
    # The kNN search and the geometry only depend on pairwise distances: work in the span of
    # the frames (exact, and much cheaper than 100k-dimensional pixels).
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    x = u * s
    for k in ks:
        k_used = min(int(k), n - 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "lle":
                d_used = min(d_max, n - 2)
                emb = LocallyLinearEmbedding(n_neighbors=k_used, n_components=d_used,
                                             eigen_solver="dense", random_state=0).fit_transform(x)
            else:
                d_used = min(d_max, n - 1)
                geo = Isomap(n_neighbors=k_used, n_components=1, eigen_solver="dense").fit(x)
                emb = _classical_mds(geo.dist_matrix_, d_used)
        yield k_used, np.asarray(emb, dtype=np.float64)


def manifold_matrices(array: np.ndarray, method: str, ks: Sequence[int] = K_RANGE,
                      ds: Sequence[int] = D_RANGE
                      ) -> Iterator[tuple[int, int, int, int, np.ndarray]]:
    """Eq. 10 for each setting: yields (k, d, k_used, d_used, D) with D the L2 in the embedding."""
    for k, (k_used, emb) in zip(ks, manifold_embeddings(array, method, ks, max(ds)), strict=True):
        for d in ds:
            d_used = min(d, emb.shape[1])
            y = emb[:, :d_used]
            yield k, d, k_used, d_used, _finish(cdist(y, y))


def greedy_chain(D: np.ndarray, start: int = 0) -> np.ndarray:
    """Nearest-neighbour chain from ``start``: always step to the closest unvisited frame.

    Ties go to the lowest index.

    >>> D = np.array([[0, 1, 2, 3], [1, 0, 5, 1], [2, 5, 0, 1], [3, 1, 1, 0]], float)
    >>> greedy_chain(D, 0).tolist()
    [0, 1, 3, 2]
    """
    D = np.asarray(D, dtype=np.float64)
    n = len(D)
    visited = np.zeros(n, bool)
    order = [int(start)]
    visited[start] = True
    for _ in range(n - 1):
        row = np.where(visited, np.inf, D[order[-1]])
        nxt = int(np.argmin(row))
        order.append(nxt)
        visited[nxt] = True
    return np.array(order, dtype=np.intp)


def two_opt(D: np.ndarray, order: Sequence[int] | np.ndarray, fix_end: bool = False,
            max_rounds: int = 1000) -> np.ndarray:
    """2-opt on an open path with a fixed first frame (and last, with ``fix_end``).

    Repeatedly applies the best segment reversal ``order[i..j]`` that shortens the path until
    none does (vectorised over all (i, j) per round).

    >>> D = np.array([[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]], float)
    >>> two_opt(D, [0, 2, 1, 3]).tolist()
    [0, 1, 2, 3]
    """
    D = np.asarray(D, dtype=np.float64)
    p = np.array(order, dtype=np.intp)
    n = len(p)
    if n < 4 and not (n == 3 and not fix_end):
        return p
    last = n - 2 if fix_end else n - 1
    i_idx, j_idx = np.triu_indices(n, k=1)
    keep = (i_idx >= 1) & (j_idx <= last)
    i_idx, j_idx = i_idx[keep], j_idx[keep]
    for _ in range(max_rounds):
        a, b = p[i_idx - 1], p[i_idx]
        c = p[j_idx]
        has_next = j_idx + 1 < n
        e = p[np.minimum(j_idx + 1, n - 1)]
        before = D[a, b] + np.where(has_next, D[c, e], 0.0)
        after = D[a, c] + np.where(has_next, D[b, e], 0.0)
        gain = before - after
        best = int(np.argmax(gain))
        if gain[best] <= 1e-12 * max(1.0, float(before[best])):
            break
        i, j = i_idx[best], j_idx[best]
        p[i:j + 1] = p[i:j + 1][::-1].copy()
    return p
