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
networks and the GEMM. ``cache=False`` or ``RESEQ_NO_CACHE=1`` turns both caches off. Entries
are verified when read (:mod:`reseq.cache`): a damaged one is discarded with a warning and
recomputed; an unwritable cache folder warns once and the work goes on without it.

Exactness and memory. Features are computed once per distinct frame (frames are identified by a
hash of their pixels, so duplicate frames cost nothing and get distance exactly 0) and cached on
disk, keyed by frame content, network, weights version and working size. The Gram matrix is
accumulated in float64 over fixed chunks of :data:`CHUNK_COLS` raw feature columns, each chunk
centred and multiplied in float32 (one GEMM per chunk). Features are read in blocks of whole
chunks sized so that the features held in memory stay within ``memory_budget`` bytes; when all
features do not fit they stream from the cache files (or a temporary spill folder when caching
is off), so N is limited by disk, not RAM. Because the chunks do not depend on the budget, the
in-memory and the streamed route do the same arithmetic on the same numbers and give the same
matrix, bit for bit (each chunk is copied to a 64-byte aligned buffer, as MKL's results may
depend on alignment).

Device. ``device="cuda"`` (or ``"auto"`` with a CUDA GPU) multiplies the chunks on the GPU: each
chunk is read, masked and centred on the CPU exactly as above, copied over, multiplied in its
own precision (float32 with TF32 off, i.e. ``torch.set_float32_matmul_precision("highest")``
for the duration; float64 for ``l2``) and added into a float64 Gram matrix that stays on the
GPU (8 N^2 bytes there) until the end. The result differs from the CPU's only by the float32
GEMM's summation order: both are float32 products of the same numbers accumulated in float64,
so they agree to float32 GEMM rounding (``benchmarks/distance_matrix.py --gram`` prints the
largest difference from the CPU's matrix and from a float64 reference per device; on the CPU,
300 real frames at 256 px: 9.5e-8 from float64, 1.2e-7 of the median distance). Apple's
``"mps"`` has no float64: float32 chunks multiply on the GPU and each product is added into the
float64 matrix on the CPU (same precision as CUDA; one N x N copy back per chunk), while float64
chunks (``l2``) multiply on the CPU. ``device="cpu"`` (the default of the Python functions) is
the arithmetic above, bit for bit.

>>> import numpy as np
>>> x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
>>> D = distance_matrix(x, metric="l2", progress=False)
>>> D.shape, bool(np.all(np.diag(D) == 0)), bool(np.allclose(D, D.T))
((4, 4), True, True)
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import cache as _cache
from ._util import progress
from .errors import ReseqError, ReseqWarning

__all__ = [
    "METRICS",
    "distance_matrix",
    "frame_hashes",
    "gram_distances",
    "squared_euclidean",
]

METRICS = ("lpips", "cosine", "l2")
FEATURE_FORMAT = "f2"  # bump when the cached feature layout changes (f2: verified entries)
DEFAULT_BUDGET = 4 * 1024**3
#: Raw feature columns multiplied in float32 per GEMM before the float64 accumulation; fixed, so
#: that every memory budget sums the same chunks (bounds the float32 rounding error as well).
CHUNK_COLS = 8192


def frame_hashes(images: np.ndarray) -> list[str]:
    """sha256 of each frame's shape and pixels (the feature cache key)."""
    from ._util import iter_frames

    out = []
    for im in iter_frames(images):
        h = hashlib.sha256(repr(im.shape).encode())
        h.update(np.ascontiguousarray(im).tobytes())
        out.append(h.hexdigest())
    return out


def _as_images(frames) -> np.ndarray:
    arr = getattr(frames, "array", frames)
    try:
        arr = np.asarray(arr)
    except ValueError as exc:  # e.g. a list of frames of different sizes
        sizes = sorted({getattr(f, "shape", None) for f in arr if hasattr(f, "shape")}, key=str)
        what = f"frames of different sizes ({', '.join(map(str, sizes[:3]))})" if len(sizes) > 1 \
            else "frames that do not form one array"
        raise ReseqError(f"expected frames as one (N, H, W, 3) uint8 array, got {what}: "
                         f"{' '.join(str(exc).split())[:120]}") from None
    if arr.dtype == object:
        raise ReseqError("expected frames as one (N, H, W, 3) uint8 array, got frames of "
                         "different sizes or types")
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ReseqError(f"expected frames as (N, H, W, 3) uint8, got shape {arr.shape} {arr.dtype}")
    if len(arr) < 2:
        raise ReseqError(f"need at least 2 frames for a distance matrix, got {len(arr)}")
    if min(arr.shape[1:3]) < 1:
        raise ReseqError(f"frames of {arr.shape[2]}x{arr.shape[1]} px are empty")
    return arr


def _aligned_copy(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``x`` starting on a 64-byte boundary."""
    buf = np.empty(x.nbytes + 64, np.uint8)
    off = (-buf.ctypes.data) % 64
    out = buf[off:off + x.nbytes].view(x.dtype).reshape(x.shape)
    np.copyto(out, x)
    return out


def gram_distances(read_block: Callable[[int, int], np.ndarray], n: int, dim: int,
                   block_cols: int, show: bool = False, desc: str = "distances",
                   center: bool = True, kept: np.ndarray | None = None,
                   device: str = "cpu") -> np.ndarray:
    """Squared Euclidean distances of n vectors whose columns come in blocks.

    ``read_block(a, b)`` returns the columns ``a:b`` of the embedding (float32 or float64), or,
    given the boolean mask ``kept`` over the ``dim`` columns, only the kept ones among them.
    Blocks are ``block_cols`` rounded down to whole chunks of :data:`CHUNK_COLS` columns (at
    least one). Each chunk is centred (distances do not change, cancellation does; skip with
    ``center=False`` when the data already are) and multiplied in its own precision; the Gram
    matrix accumulates in float64. The chunks are the same whatever ``block_cols``, and so is
    the result, bit for bit. ``device`` (``"cpu"``, ``"auto"``, ``"cuda"``, ``"mps"``) is where
    the chunks are multiplied (see the module doc for the precision).
    Returns a symmetric, non-negative float64 matrix with an exact zero diagonal.
    """
    import torch  # imported here: a matrix read from the cache needs no torch

    from .features import resolve_device

    device = resolve_device(device)
    ends = None if kept is None else np.concatenate([[0], np.cumsum(kept, dtype=np.int64)])
    block_cols = max(1, int(block_cols) // CHUNK_COLS) * CHUNK_COLS
    gram = np.zeros((n, n), dtype=np.float64)
    precision = torch.get_float32_matmul_precision()
    if device != "cpu":
        torch.set_float32_matmul_precision("highest")  # no TF32: float32 products, as on CPU
    try:
        # CUDA: the float64 sum stays on the device; mps has none: its products are summed here
        acc = torch.zeros((n, n), dtype=torch.float64, device=device) if device == "cuda" else None
        starts = range(0, dim, block_cols)
        for a in progress(starts, desc, total=len(starts), enabled=show and len(starts) > 1,
                          unit="block"):
            b = min(dim, a + block_cols)
            block = read_block(a, b)
            for s in range(a, b, CHUNK_COLS):
                e = min(b, s + CHUNK_COLS)
                lo, hi = (s - a, e - a) if ends is None else (ends[s] - ends[a], ends[e] - ends[a])
                if hi <= lo:
                    continue
                sub = _aligned_copy(block[:, lo:hi])
                if center:
                    sub -= sub.mean(axis=0, dtype=np.float64).astype(sub.dtype)
                t = torch.from_numpy(sub)
                if acc is not None:
                    t = t.to(device)
                    acc += torch.mm(t, t.T)  # float32 product, float64 sum (no copy)
                elif device == "mps" and sub.dtype == np.float32:
                    t = t.to(device)
                    gram += torch.mm(t, t.T).cpu().numpy()
                else:  # the CPU (and float64 chunks with mps)
                    gram += torch.mm(t, t.T).numpy()
            del block
        if acc is not None:
            gram = acc.cpu().numpy()
            del acc
    except torch.cuda.OutOfMemoryError:
        raise ReseqError(f"the GPU ran out of memory for the {n:,} x {n:,} Gram matrix; use "
                         "--device cpu") from None
    finally:
        if device != "cpu":
            torch.set_float32_matmul_precision(precision)
    sq = np.diag(gram).copy()
    dist = sq[:, None] + sq[None, :] - 2.0 * gram
    dist = 0.5 * (dist + dist.T)
    np.maximum(dist, 0.0, out=dist)
    np.fill_diagonal(dist, 0.0)
    return dist


def squared_euclidean(x: np.ndarray, memory_budget: int = DEFAULT_BUDGET,
                      device: str = "cpu") -> np.ndarray:
    """Squared Euclidean distance matrix of the rows of ``x``, via Gram blocks.

    float64 input is multiplied in float64; anything else in float32; ``device``: where (see
    :func:`gram_distances`).

    >>> squared_euclidean(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 25.0], [25.0, 0.0]]
    """
    x = np.asarray(x).reshape(len(x), -1)
    n, dim = x.shape
    dtype = np.float64 if x.dtype == np.float64 else np.float32  # float64 input stays exact
    block_cols = max(1, int(memory_budget // 4 // (np.dtype(dtype).itemsize * max(n, 1))))
    return gram_distances(lambda a, b: x[:, a:b].astype(dtype, copy=True), n, dim, block_cols,
                          device=device)


class _FeatureStore:
    """Deep features of distinct frames for one metric.

    Raw normalised features (metric-independent) live in one verified entry per frame
    (:mod:`reseq.cache`), in the cache or, when caching is off or impossible, a temporary spill
    folder. When all frames fit in the memory budget, ``array`` holds them already scaled for
    the metric, zero-weight columns dropped; otherwise :meth:`read` streams column blocks from
    the files, verifying the chunks it reads, and recomputes a frame whose entry is damaged.
    """

    def __init__(self, images: np.ndarray, net: str, metric: str, use_cache: bool, budget: int,
                 show: bool, device: str = "cpu"):
        from . import features as _feat

        self.net = net
        self.device = device
        self.images = images
        self.h, self.w = images.shape[1:3]
        self.dim = _feat.feature_dim(net, self.h, self.w)
        scales = _feat.layer_scales(net, self.h, self.w, metric)
        self.keep = scales > 0
        self.scales = scales
        self.kept = int(self.keep.sum())
        self.n = len(images)
        self.hashes = frame_hashes(images)
        self._tmp: Path | None = None
        folder = None
        if use_cache:
            from .assets import WEIGHTS_VERSION

            key = f"{net}-{WEIGHTS_VERSION}-{FEATURE_FORMAT}-{self.w}x{self.h}"
            folder = _cache.folder("features", key)
        self.paths: list[Path | None] = [
            folder / h[:2] / f"{h}.feat" if folder is not None else None for h in self.hashes]
        self.wrote = False
        self.in_memory = self.n * self.kept * 4 <= budget * 0.7
        self.array = np.empty((self.n, self.kept), np.float32) if self.in_memory else None
        self._fill(budget, show)

    def _put(self, i: int, row: np.ndarray) -> None:
        self.array[i] = row[self.keep]
        self.array[i] *= self.scales[self.keep]

    def _fill(self, budget: int, show: bool) -> None:
        size = self.dim * 4
        todo = []
        for i, path in enumerate(self.paths):
            if path is None:
                todo.append(i)
            elif self.in_memory:
                data = _cache.read_entry(path, size)
                if data is None:
                    todo.append(i)
                else:
                    self._put(i, np.frombuffer(data, np.float32))
            elif not _cache.check_entry(path, size):  # chunks are verified as they stream
                todo.append(i)
        if not todo:
            return
        per_frame = 12 * self.dim * 4  # activations of one frame through the net, generous
        batch = int(max(1, min(32, budget // 8 // per_frame)))
        bar = progress(range(0, len(todo), batch), f"features ({self.net})",
                       total=(len(todo) + batch - 1) // batch, enabled=show, unit="batch")
        from . import features as _feat

        for s in bar:
            idx = todo[s:s + batch]
            feats = _feat.normalized_features(self.images[idx], self.net, self.device)
            for row, i in zip(feats, idx):
                if self.in_memory:
                    self._put(i, row)
                self._write(i, row)

    def _write(self, i: int, row: np.ndarray) -> None:
        path = self.paths[i]
        if path is not None and _cache.put(path, row, CHUNK_COLS * 4):
            self.wrote = True
            return
        if self.in_memory:  # the array has it; no file needed
            self.paths[i] = None
            return
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="reseq-features-"))
        path = self.paths[i] = self._tmp / f"{i}.feat"
        try:
            _cache.write_entry(path, row, CHUNK_COLS * 4)
        except OSError as exc:
            raise ReseqError(f"cannot spill features to {self._tmp} ({exc.strerror or exc}); "
                             "free some disk space or raise --memory") from None

    def read(self, a: int, b: int) -> np.ndarray:
        """Raw-feature columns ``a:b`` of every frame, scaled, zero-weight columns dropped."""
        out = np.empty((self.n, b - a), np.float32)
        for i in range(self.n):
            path = self.paths[i]
            data = _cache.read_range(path, a * 4, b * 4, self.dim * 4) if path is not None else None
            if data is None:  # damaged or evicted meanwhile: compute this frame again
                from . import features as _feat

                row = _feat.normalized_features(self.images[i:i + 1], self.net, self.device)[0]
                self._write(i, row)
                out[i] = row[a:b]
            else:
                out[i] = np.frombuffer(data, np.float32)
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
                    progress: bool = True, stats: dict | None = None,
                    device: str = "cpu") -> np.ndarray:
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
    device : {"cpu", "auto", "cuda", "mps"}
        Where the networks run and the Gram matrix is multiplied
        (:func:`reseq.features.resolve_device`; features agree with the CPU's to float32
        rounding, the matrix to float32 GEMM rounding: see the module doc). A matrix read from
        the cache is the one first computed, on whichever device.
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
    if cache:
        _cache.max_bytes()  # a bad RESEQ_CACHE_MAX is an error before the work, not after
    matrix_file = _matrix_cache_file(uniq, metric, net) if cache else None
    dist = _read_matrix(matrix_file, m) if matrix_file is not None else None
    if dist is not None:
        info.update(matrix_s=0.0, dim=0, gemm_flops=0, matrix_cached=True)
        return dist[np.ix_(inverse, inverse)]
    wrote = False
    if metric == "l2":
        flat = distinct.reshape(m, -1)
        block_cols = max(1, int(memory_budget // 4 // (8 * m)))
        t0 = time.perf_counter()
        # float64 here: pixels are cheap, and the square root magnifies the rounding of small
        # squared distances (float32 was off by ~2e-5 between near-identical frames)
        dsq = gram_distances(lambda a, b: flat[:, a:b] / 255.0, m, flat.shape[1], block_cols,
                             show, "distances (l2)", device=device)
        dist = np.sqrt(dsq)
        info.update(matrix_s=time.perf_counter() - t0, dim=flat.shape[1],
                    gemm_flops=2 * m * m * flat.shape[1])
    else:
        t0 = time.perf_counter()
        store = _FeatureStore(distinct, net, metric, cache, memory_budget, show, device)
        info["features_s"] = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            desc = f"distances ({metric})"
            if store.in_memory:
                arr, ends = store.array, np.concatenate([[0], np.cumsum(store.keep)])
                dist = gram_distances(lambda a, b: arr[:, ends[a]:ends[b]], m, store.dim,
                                      store.dim, show, desc, kept=store.keep, device=device)
            else:
                # blocks of raw columns: ~15% of the budget (read buffer + masked copy)
                block_cols = max(1, int(memory_budget * 0.15 // (4 * m)))
                dist = gram_distances(store.read, m, store.dim, block_cols, show, desc,
                                      kept=store.keep, device=device)
            info.update(matrix_s=time.perf_counter() - t0, dim=store.kept,
                        gemm_flops=2 * m * m * store.kept, streamed=not store.in_memory)
            wrote = store.wrote
        finally:
            store.close()
    if matrix_file is not None:
        buf = io.BytesIO()
        np.save(buf, dist)
        wrote = _cache.put(matrix_file, buf.getbuffer()) or wrote
    if wrote:
        _cache.evict()
    return dist[np.ix_(inverse, inverse)]


def _read_matrix(path: Path, m: int) -> np.ndarray | None:
    """The cached (m, m) matrix at ``path``, verified; None if absent or damaged."""
    import warnings

    data = _cache.read_entry(path)
    if data is None:
        return None
    try:
        dist = np.load(io.BytesIO(data), allow_pickle=False)
        if dist.shape == (m, m) and dist.dtype == np.float64:
            return dist
        problem = f"shape {dist.shape} {dist.dtype}, expected ({m}, {m}) float64"
    except (OSError, ValueError) as exc:
        problem = f"not a matrix: {exc}"
    try:
        path.unlink(missing_ok=True)
    except OSError:  # a read-only cache: the entry stays, and is never used
        pass
    warnings.warn(f"discarded damaged cache entry {path} ({problem}); recomputing it",
                  ReseqWarning, stacklevel=3)
    return None


def _matrix_cache_file(sorted_hashes: np.ndarray, metric: str, net: str) -> Path | None:
    """Cache entry of the matrix of a set of distinct frames (rows in sorted-hash order)."""
    from .assets import WEIGHTS_VERSION

    key = hashlib.sha256(f"{metric}|{net if metric != 'l2' else ''}|{WEIGHTS_VERSION}|{FEATURE_FORMAT}".encode())
    for h in sorted_hashes:
        key.update(bytes.fromhex(str(h)))
    digest = key.hexdigest()
    folder = _cache.folder("matrices")
    return folder / digest[:2] / f"{digest}.dist" if folder is not None else None
