"""Distance matrices between frames: LPIPS, cosine of deep features, L2 of pixels.

Every metric here is a (squared) Euclidean distance in some embedding, so the N x N matrix comes
from one Gram matrix ``G = E E^T`` instead of N^2 comparisons:

    D_ij = G_ii + G_jj - 2 G_ij

- ``lpips`` (paper eq. 1): E = channel-normalised AlexNet/VGG16 activations scaled by
  ``sqrt(w_c / (H_l W_l))`` (:mod:`reseq.features`); D is LPIPS itself.
- ``cosine`` (eq. 11): the same features scaled by ``sqrt(1 / (2 H_l W_l))``; for unit-normalised
  features this is ``sum_l (1 - mean_hw <a, b>)``, with exact zeros for identical frames.
- ``l2`` (eq. 8): E = raw RGB pixels in [0, 1]; D is the square root of the Gram distances.

Caches. The matrix of a set of distinct frames is cached too (keyed by their hashes, metric,
network and weights version), so a second run on the same frames, in any order, skips both the
networks and the GEMM. ``cache=False`` or ``RESEQ_NO_CACHE=1`` turns both caches off.

Exactness and memory. Features are computed once per distinct frame (frames are identified by a
hash of their pixels, so duplicate frames cost nothing and get distance exactly 0) and cached on
disk, keyed by frame content, network, weights version and working size. The Gram matrix is
accumulated in float64 over column blocks of the features, each block centred and multiplied in
float32 (one GEMM per block). Blocks are sized so that the features held in memory stay within
``memory_budget`` bytes; when all features do not fit they stream from the cache files (or a
temporary spill folder when caching is off), so N is limited by disk, not RAM.

>>> import numpy as np
>>> x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
>>> D = distance_matrix(x, metric="l2", progress=False)
>>> D.shape, bool(np.all(np.diag(D) == 0)), bool(np.allclose(D, D.T))
((4, 4), True, True)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._util import cache_dir, progress
from .errors import ReseqError

__all__ = [
    "METRICS",
    "distance_matrix",
    "frame_hashes",
    "gram_distances",
    "squared_euclidean",
]

METRICS = ("lpips", "cosine", "l2")
FEATURE_FORMAT = "f1"  # bump when the cached feature layout changes
DEFAULT_BUDGET = 4 * 1024**3
# Longest run of columns multiplied in float32 before accumulating in float64: bounds the
# rounding error of the GEMM's float32 sums (measured: |error| < 1e-6 on VGG at 256 px).
MAX_BLOCK_COLS = 1 << 16


def frame_hashes(images: np.ndarray) -> list[str]:
    """sha256 of each frame's shape and pixels (the feature cache key)."""
    out = []
    for im in images:
        h = hashlib.sha256(repr(im.shape).encode())
        h.update(np.ascontiguousarray(im).tobytes())
        out.append(h.hexdigest())
    return out


def _as_images(frames) -> np.ndarray:
    arr = getattr(frames, "array", frames)
    arr = np.asarray(arr)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ReseqError(f"expected frames as (N, H, W, 3) uint8, got shape {arr.shape} {arr.dtype}")
    if len(arr) < 2:
        raise ReseqError(f"need at least 2 frames for a distance matrix, got {len(arr)}")
    return arr


def gram_distances(read_block: Callable[[int, int], np.ndarray], n: int, dim: int,
                   block_cols: int, show: bool = False, desc: str = "distances",
                   center: bool = True) -> np.ndarray:
    """Squared Euclidean distances of n vectors whose columns come in blocks.

    ``read_block(a, b)`` returns the columns ``a:b`` of the embedding (float32 or float64, an
    array the function may modify in place). Each run of at most :data:`MAX_BLOCK_COLS` columns
    is centred (distances do not change, cancellation does; skip with ``center=False`` when the
    data already are) and multiplied in its own precision; the Gram matrix accumulates in
    float64.
    Returns a symmetric, non-negative float64 matrix with an exact zero diagonal.
    """
    import torch  # imported here: a matrix read from the cache needs no torch

    gram = np.zeros((n, n), dtype=np.float64)
    starts = range(0, dim, max(1, block_cols))
    for a in progress(starts, desc, total=len(starts), enabled=show and len(starts) > 1, unit="block"):
        block = read_block(a, min(dim, a + block_cols))
        for s in range(0, block.shape[1], MAX_BLOCK_COLS):
            sub = block[:, s:s + MAX_BLOCK_COLS]
            if center:
                sub -= sub.mean(axis=0, dtype=np.float64).astype(sub.dtype)
            t = torch.from_numpy(sub)  # a strided view is fine: BLAS takes the row stride
            gram += torch.mm(t, t.T).numpy()
        del block
    sq = np.diag(gram).copy()
    dist = sq[:, None] + sq[None, :] - 2.0 * gram
    dist = 0.5 * (dist + dist.T)
    np.maximum(dist, 0.0, out=dist)
    np.fill_diagonal(dist, 0.0)
    return dist


def squared_euclidean(x: np.ndarray, memory_budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """Squared Euclidean distance matrix of the rows of ``x``, via Gram blocks.

    float64 input is multiplied in float64; anything else in float32.

    >>> squared_euclidean(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 25.0], [25.0, 0.0]]
    """
    x = np.asarray(x).reshape(len(x), -1)
    n, dim = x.shape
    dtype = np.float64 if x.dtype == np.float64 else np.float32  # float64 input stays exact
    block_cols = max(1, int(memory_budget // 4 // (np.dtype(dtype).itemsize * max(n, 1))))
    return gram_distances(lambda a, b: x[:, a:b].astype(dtype, copy=True), n, dim, block_cols)


class _FeatureStore:
    """Deep features of distinct frames for one metric.

    Raw normalised features (metric-independent) live in one file per frame, in the cache or a
    temporary spill folder. When all frames fit in the memory budget, ``array`` holds them
    already scaled for the metric, zero-weight columns dropped, and centred, so the Gram stage
    multiplies views of it without copies; otherwise :meth:`read` streams column blocks from
    the files.
    """

    def __init__(self, images: np.ndarray, net: str, metric: str, use_cache: bool, budget: int,
                 show: bool):
        from . import features as _feat

        self.net = net
        self.h, self.w = images.shape[1:3]
        self.dim = _feat.feature_dim(net, self.h, self.w)
        scales = _feat.layer_scales(net, self.h, self.w, metric)
        self.keep = scales > 0
        self.scales = scales
        self.kept = int(self.keep.sum())
        self.n = len(images)
        self.hashes = frame_hashes(images)
        self._tmp: Path | None = None
        if use_cache:
            from .assets import WEIGHTS_VERSION

            self.folder = cache_dir("features", f"{net}-{WEIGHTS_VERSION}-{FEATURE_FORMAT}-{self.w}x{self.h}")
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix="reseq-features-"))
            self.folder = self._tmp
        self.in_memory = self.n * self.kept * 4 <= budget * 0.7
        self.array = np.empty((self.n, self.kept), np.float32) if self.in_memory else None
        self._fill(images, budget, show)
        if self.in_memory:
            mean = self.array.mean(axis=0, dtype=np.float64).astype(np.float32)
            np.subtract(self.array, mean, out=self.array)

    def path(self, i: int) -> Path:
        return self.folder / self.hashes[i][:2] / f"{self.hashes[i]}.f32"

    def _put(self, i: int, row: np.ndarray) -> None:
        self.array[i] = row[self.keep]
        self.array[i] *= self.scales[self.keep]

    def _fill(self, images: np.ndarray, budget: int, show: bool) -> None:
        todo = [i for i in range(self.n) if not self.path(i).exists()]
        if self.in_memory:
            for i in sorted(set(range(self.n)) - set(todo)):
                self._put(i, np.fromfile(self.path(i), dtype=np.float32))
        if not todo:
            return
        per_frame = 12 * self.dim * 4  # activations of one frame through the net, generous
        batch = int(max(1, min(32, budget // 8 // per_frame)))
        bar = progress(range(0, len(todo), batch), f"features ({self.net})",
                       total=(len(todo) + batch - 1) // batch, enabled=show, unit="batch")
        from . import features as _feat

        for s in bar:
            idx = todo[s:s + batch]
            feats = _feat.normalized_features(images[idx], self.net)
            for row, i in zip(feats, idx):
                if self.in_memory:
                    self._put(i, row)
                self._write(i, row)

    def _write(self, i: int, row: np.ndarray) -> None:
        path = self.path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        row.tofile(tmp)
        os.replace(tmp, path)

    def read(self, a: int, b: int) -> np.ndarray:
        """Raw-feature columns ``a:b`` of every frame, scaled, zero-weight columns dropped."""
        out = np.empty((self.n, b - a), np.float32)
        for i in range(self.n):
            out[i] = np.fromfile(self.path(i), dtype=np.float32, count=b - a, offset=a * 4)
        keep = self.keep[a:b]
        out = out[:, keep] if not keep.all() else out
        out *= self.scales[a:b][keep]
        return out

    def close(self) -> None:
        self.array = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def distance_matrix(frames, metric: str = "lpips", net: str = "alex", *,
                    memory_budget: int = DEFAULT_BUDGET, cache: bool | None = None,
                    progress: bool = True, stats: dict | None = None) -> np.ndarray:
    """The N x N distance matrix of ``frames`` (a :class:`~reseq.frames.Frames` or an array).

    Parameters
    ----------
    frames : Frames or (N, H, W, 3) uint8 array
        What the networks see; rows of the result follow this order.
    metric : {"lpips", "cosine", "l2"}
        LPIPS v0.1 (eq. 1), cosine distance of the same deep features (eq. 11), or L2 of raw
        pixels in [0, 1] (eq. 8).
    net : {"alex", "vgg"}
        Backbone for the deep-feature metrics (ignored by ``l2``).
    memory_budget : int
        Bytes of feature data held in memory at once (default 4 GiB).
    cache : bool, optional
        Keep deep features and the matrix on disk for later runs (default: on, unless
        ``RESEQ_NO_CACHE`` is set).
    stats : dict, optional
        Filled with timings and sizes: ``features_s``, ``matrix_s``, ``distinct``, ``dim`` (columns
        multiplied), ``gemm_flops``, ``streamed`` (features read from disk in blocks),
        ``matrix_cached`` (the matrix came from the cache).

    Returns
    -------
    (N, N) float64, symmetric, non-negative, zero diagonal; exactly 0 between identical frames.
    """
    if metric not in METRICS:
        raise ReseqError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    images = _as_images(frames)
    show = progress
    hashes = frame_hashes(images)
    uniq, first, inverse = np.unique(np.array(hashes), return_index=True, return_inverse=True)
    distinct = images[first]
    m = len(distinct)
    info = stats if stats is not None else {}
    info.update(distinct=m, features_s=0.0, streamed=False, matrix_cached=False)
    if m == 1:
        info.update(matrix_s=0.0, dim=0, gemm_flops=0)
        return np.zeros((len(images), len(images)))
    if cache is None:
        cache = not os.environ.get("RESEQ_NO_CACHE")
    matrix_file = _matrix_cache_file(uniq, metric, net) if cache else None
    if matrix_file is not None and matrix_file.exists():
        try:
            dist = np.load(matrix_file, allow_pickle=False)
            if dist.shape == (m, m):
                info.update(matrix_s=0.0, dim=0, gemm_flops=0, matrix_cached=True)
                return dist[np.ix_(inverse, inverse)]
        except (OSError, ValueError):
            pass  # damaged entry: recompute and replace it
    if metric == "l2":
        flat = distinct.reshape(m, -1)
        block_cols = max(1, int(memory_budget // 4 // (8 * m)))
        t0 = time.perf_counter()
        # float64 here: pixels are cheap, and the square root magnifies the rounding of small
        # squared distances (float32 was off by ~2e-5 between near-identical frames)
        dsq = gram_distances(lambda a, b: flat[:, a:b] / 255.0, m, flat.shape[1], block_cols,
                             show, "distances (l2)")
        dist = np.sqrt(dsq)
        info.update(matrix_s=time.perf_counter() - t0, dim=flat.shape[1],
                    gemm_flops=2 * m * m * flat.shape[1])
    else:
        t0 = time.perf_counter()
        store = _FeatureStore(distinct, net, metric, cache, memory_budget, show)
        info["features_s"] = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            desc = f"distances ({metric})"
            if store.in_memory:
                arr = store.array
                dist = gram_distances(lambda a, b: arr[:, a:b], m, store.kept, store.kept,
                                      show, desc, center=False)
            else:
                # blocks of raw columns: ~15% of the budget (read buffer + masked copy)
                block_cols = max(1, int(memory_budget * 0.15 // (4 * m)))
                dist = gram_distances(store.read, m, store.dim, block_cols, show, desc)
            info.update(matrix_s=time.perf_counter() - t0, dim=store.kept,
                        gemm_flops=2 * m * m * store.kept, streamed=not store.in_memory)
        finally:
            store.close()
    if matrix_file is not None:
        matrix_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = matrix_file.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, dist)
        os.replace(tmp, matrix_file)
    return dist[np.ix_(inverse, inverse)]


def _matrix_cache_file(sorted_hashes: np.ndarray, metric: str, net: str) -> Path:
    """Cache entry of the matrix of a set of distinct frames (rows in sorted-hash order)."""
    from .assets import WEIGHTS_VERSION

    key = hashlib.sha256(f"{metric}|{net if metric != 'l2' else ''}|{WEIGHTS_VERSION}|{FEATURE_FORMAT}".encode())
    for h in sorted_hashes:
        key.update(bytes.fromhex(str(h)))
    digest = key.hexdigest()
    return cache_dir("matrices") / digest[:2] / f"{digest}.npy"
