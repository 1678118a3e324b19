"""Sketches: a few hundred numbers per frame whose distances estimate LPIPS (APPROXIMATE).

LPIPS is a squared Euclidean distance between embeddings (:mod:`reseq.features`): ``d(x, y) =
||e(x) - e(y)||^2`` with ``e`` of 236,464 floats per frame for AlexNet at 256x144 (924 KiB). At
10^5 frames those embeddings (137 GB in the feature cache) and the dense N x N matrix (80 GB)
do not fit; a *sketch* does. :func:`sketch` streams the frames through the network in batches
and keeps only ``s = P^T e`` per frame, ``d`` floats (float32), where ``P`` is a very sparse
random sign projection (a sparse Johnson–Lindenstrauss transform): every input coordinate has
:data:`NONZEROS` entries ``+-1/sqrt(NONZEROS)`` in random output rows. Then

    E ||s(x) - s(y)||^2 = ||e(x) - e(y)||^2 = LPIPS(x, y)

(unbiased), with a relative error that shrinks like ``1/sqrt(d)``. ``P`` is regenerated from
``seed`` and the embedding size (never stored or shipped), and costs ``NONZEROS`` multiply-adds
per input coordinate instead of ``d`` for a Gaussian projection.

Accuracy (measured, ``benchmarks/scale.py accuracy --frames 600 --size 128``: 600 real frames,
bunny + dev clips, AlexNet, 179,700 pairs, against the exact Gram-matrix LPIPS; the numbers are
in :data:`ACCURACY`):

    d       median rel. error   p90 rel. error   10-NN recall
    256     5.7%                13.7%            0.927
    512     3.7%                 9.4%            0.952
    1024    2.7%                 6.4%            0.962   (the default)
    2048    2.4%                 5.7%            0.975

Storing sketches as float16 changed none of these numbers (to the digits shown), but they stay
float32 (4 KiB a frame at d = 1024: 400 MB at 10^5 frames). **Sketch distances are
approximate**: use the exact dense path (:func:`reseq.distances.distance_matrix`) where the
N x N matrix fits in memory; the CLI does.

Caching and resuming. Distinct frames (by pixel hash; duplicates share one sketch and get
distance exactly 0) are cut into shards of :data:`SHARD` frames; each finished shard is one
verified entry of the cache (:mod:`reseq.cache`, folder ``sketches/``) keyed by the hashes of
its frames, the network, the LPIPS weights version, the frame size, ``d``, ``seed``,
:data:`PROJECTION_VERSION` and :data:`SKETCH_FORMAT`. An interrupted run resumes from its
finished shards; a damaged shard is discarded with a warning and recomputed.

Distributed. ``scheduler="tcp://HOST:PORT"`` (or ``$RESEQ_DASK_SCHEDULER``; the CLI's
``--scheduler``) sends the shards still to compute to a Dask distributed cluster as tasks (the
optional extra ``reseq[scale]``); without one everything runs in this process. Finished shards
are cached by the client as they arrive, so a cluster run resumes like a local one, and the
sketches are the same bit for bit whoever computed them (same kind of machine, same network
batches per shard). Left for later: decoding on the workers (the frames are decoded here and
sent) and the neighbour search as tasks.

Device. ``device="auto"`` runs the network on a CUDA or Apple GPU when there is one
(:func:`reseq.features.resolve_device`); the projection runs on the CPU (float32, a fixed order
of additions), so the sketch of a frame depends only on its features.

>>> import numpy as np
>>> P = projection(1000, 64, seed=0)
>>> P.shape, P.dtype.name, int(np.abs(P).sum(axis=1).max() ** 2)   # 4 entries +-1/2 a row
((1000, 64), 'float32', 4)
"""

from __future__ import annotations

import functools
import hashlib
import os
import time

import numpy as np

from . import cache as _cache
from ._util import progress as _progress
from ._util import release_pages
from .errors import ReseqError

__all__ = [
    "ACCURACY",
    "BATCH",
    "DEFAULT_D",
    "NONZEROS",
    "PROJECTION_VERSION",
    "SHARD",
    "projection",
    "sketch",
    "sketch_distances",
]

#: Sketch length by default: chosen by measurement (see :data:`ACCURACY`).
DEFAULT_D = 1024
#: Non-zeros per input coordinate of the sparse sign projection.
NONZEROS = 4
#: Bump when the projection's construction changes (the cache key includes it).
PROJECTION_VERSION = "sjlt1"
SKETCH_FORMAT = "k1"  # bump when the shard layout changes
#: Distinct frames per cached shard (the unit of resuming).
SHARD = 256
#: Frames per network pass (fixed: part of what makes a shard's sketches reproducible).
BATCH = 16
#: Measured accuracy of sketch distances against exact LPIPS, by d: (median relative error of a
#: pair's distance, recall of the 10 nearest neighbours). See the module doc for the setup.
ACCURACY: dict[int, tuple[float, float]] = {256: (0.057, 0.927), 512: (0.037, 0.952),
                                            1024: (0.027, 0.962), 2048: (0.024, 0.975)}


@functools.lru_cache(maxsize=4)
def projection(dim: int, d: int, seed: int = 0, nonzeros: int = NONZEROS):
    """The (dim, d) sparse sign projection, a ``scipy.sparse`` CSR float32 matrix.

    Row ``i`` has ``nonzeros`` entries ``+-1/sqrt(nonzeros)`` in columns drawn uniformly (with
    replacement; collisions add up, which keeps ``E ||P^T x||^2 = ||x||^2``), all drawn from
    ``numpy.random.default_rng([seed, dim, d, nonzeros])``.
    """
    import scipy.sparse as sp

    if d < 1 or dim < 1 or nonzeros < 1:
        raise ReseqError(f"a sketch needs d >= 1 (got d={d})")
    rng = np.random.default_rng([int(seed), int(dim), int(d), int(nonzeros)])
    cols = rng.integers(0, d, size=(dim, nonzeros), dtype=np.int64)
    vals = np.where(rng.integers(0, 2, size=(dim, nonzeros)) == 1, 1.0, -1.0)
    vals = (vals / np.sqrt(nonzeros)).astype(np.float32)
    indptr = np.arange(0, dim * nonzeros + 1, nonzeros, dtype=np.int64)
    P = sp.csr_matrix((vals.ravel(), cols.ravel(), indptr), shape=(dim, d))
    P.sum_duplicates()
    return P


def _shard_file(hashes: list[str], net: str, size: tuple[int, int], d: int, seed: int):
    from .assets import WEIGHTS_VERSION

    key = hashlib.sha256(f"{net}|{WEIGHTS_VERSION}|{size[0]}x{size[1]}|{d}|{seed}|{NONZEROS}|"
                         f"{PROJECTION_VERSION}|{SKETCH_FORMAT}".encode())
    for h in hashes:
        key.update(bytes.fromhex(h))
    digest = key.hexdigest()
    folder = _cache.folder("sketches")
    return folder / digest[:2] / f"{digest}.sk" if folder is not None else None


def _check_d(d) -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 1 <= int(d) <= 1 << 16:
        raise ReseqError(f"sketch length d must be an integer between 1 and 65536, got {d!r}")
    return int(d)


def _shard_sketch(images: np.ndarray, net: str, d: int, seed: int, device: str,
                  batch: int) -> np.ndarray:
    """The sketches of one shard's frames (a task: runs in-process or on a Dask worker, where
    the network is loaded once per worker process and the projection once per shape)."""
    from .features import layer_scales, lpips_embedding

    P = projection(int((layer_scales(net, *images.shape[1:3]) > 0).sum()), d, seed)
    part = np.empty((len(images), d), np.float32)
    for s in range(0, len(images), batch):
        emb = lpips_embedding(images[s:s + batch], net, device=device)
        part[s:s + batch] = np.asarray(emb @ P, dtype=np.float32)
    return part


def _dask_client(address: str, timeout: float = 30.0):
    try:
        from distributed import Client
    except ImportError:
        raise ReseqError("a Dask scheduler needs dask distributed: pip install 'reseq[scale]'"
                         ) from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ReseqError(f"cannot reach the Dask scheduler at {address}: "
                         f"{' '.join(str(exc).split())[:160]}") from None


def sketch(frames, net: str = "alex", d: int = DEFAULT_D, seed: int = 0, *,
           device: str = "auto", cache: bool | None = None, progress: bool = True,
           stats: dict | None = None, scheduler: str | None = None) -> np.ndarray:
    """The (N, d) float32 sketches of ``frames``: ``||S[i] - S[j]||^2`` estimates LPIPS.

    Parameters
    ----------
    frames : Frames or (N, H, W, 3) uint8 array
    net : {"alex", "vgg"}
    d : int
        Sketch length (default :data:`DEFAULT_D`); the relative error shrinks like 1/sqrt(d).
    seed : int
        Seeds the projection; sketches with different seeds are not comparable.
    device : {"auto", "cpu", "cuda", "mps"}
        Where the network runs.
    cache : bool, optional
        Keep finished shards in the cache (default on unless ``RESEQ_NO_CACHE`` is set); a
        second run, or a run resumed after an interruption, reads them.
    stats : dict, optional
        Filled with ``distinct``, ``shards``, ``shards_cached``, ``sketch_s``.
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a Dask distributed scheduler (default: ``$RESEQ_DASK_SCHEDULER``,
        else none: everything runs in this process). The shards still to compute become tasks
        (the frames are sent to the workers; each worker process loads the network once); the
        results come back here and are cached as they arrive. Workers must run the same reseq.

    Identical frames get identical sketches (distance exactly 0). A shard's frames always pass
    the network in the same batches of :data:`BATCH` (the float32 rounding of a convolution may
    depend on the batch size), so the result does not depend on which shards came from the cache
    or who computed them (bit for bit on one kind of machine and device).
    """
    from .distances import _as_images, frame_hashes
    from .features import _check_net, resolve_device

    images = _as_images(frames)
    d = _check_d(d)
    net = _check_net(net)
    asked, device = device, resolve_device(device)  # workers resolve "auto" themselves
    if cache is None:
        cache = not os.environ.get("RESEQ_NO_CACHE")
    t0 = time.perf_counter()
    hashes = frame_hashes(images)
    _, first = np.unique(np.array(hashes), return_index=True)
    order = np.sort(first)  # distinct frames in input order (shards follow the video)
    pos = np.empty(len(images), np.intp)
    slot = {hashes[i]: k for k, i in enumerate(order)}
    for i, h in enumerate(hashes):
        pos[i] = slot[h]
    m = len(order)
    out = np.empty((m, d), np.float32)
    size = images.shape[1:3]
    shards = [order[s:s + SHARD] for s in range(0, m, SHARD)]
    info = stats if stats is not None else {}
    info.update(distinct=m, shards=len(shards), shards_cached=0)
    todo = []
    files = []
    for k, idx in enumerate(shards):
        path = _shard_file([hashes[i] for i in idx], net, size, d, seed) if cache else None
        files.append(path)
        data = _cache.read_entry(path, len(idx) * d * 4) if path is not None else None
        if data is None:
            todo.append(k)
        else:
            out[k * SHARD:k * SHARD + len(idx)] = np.frombuffer(data, np.float32).reshape(-1, d)
            info["shards_cached"] += 1
    wrote = False
    scheduler = scheduler or os.environ.get("RESEQ_DASK_SCHEDULER") or None
    desc = f"sketches ({net}, d={d}, {device if scheduler is None else scheduler})"
    if todo and scheduler is None:
        for k in _progress(todo, desc, total=len(todo), enabled=progress, unit="shard"):
            part = _shard_sketch(images[shards[k]], net, d, seed, device, BATCH)
            release_pages(images)  # frames kept on disk: read once, not held
            out[k * SHARD:k * SHARD + len(part)] = part
            if files[k] is not None:
                wrote = _cache.put(files[k], part) or wrote
    elif todo:
        from distributed import as_completed

        with _dask_client(scheduler) as client:
            data = client.scatter([np.ascontiguousarray(images[shards[k]]) for k in todo])
            futures = [client.submit(_shard_sketch, x, net, d, seed, asked, BATCH, pure=False)
                       for x in data]
            where = {f.key: k for f, k in zip(futures, todo)}
            for fut in _progress(as_completed(futures, loop=client.loop), desc, total=len(todo),
                                 enabled=progress, unit="shard"):
                part, k = fut.result(), where[fut.key]
                out[k * SHARD:k * SHARD + len(part)] = part
                if files[k] is not None:
                    wrote = _cache.put(files[k], part) or wrote
    if wrote:
        _cache.evict()
    info["sketch_s"] = time.perf_counter() - t0
    return out[pos]


def sketch_distances(S: np.ndarray, rows, cols=None) -> np.ndarray:
    """Estimated LPIPS between sketches: ``||S[rows] - S[cols]||^2`` pairwise (float64).

    With ``cols=None``: the (len(rows), len(rows)) matrix of ``rows``, symmetric with an exact
    zero diagonal (for windows re-solved densely); otherwise element-wise pairs.

    >>> S = np.array([[0, 0], [3, 4]], np.float32)
    >>> sketch_distances(S, [0, 1]).tolist(), sketch_distances(S, [0], [1]).tolist()
    ([[0.0, 25.0], [25.0, 0.0]], [25.0])
    """
    rows = np.asarray(rows, dtype=np.intp)
    if cols is None:
        X = S[rows].astype(np.float64)
        sq = np.einsum("ij,ij->i", X, X)
        D = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
        D = 0.5 * (D + D.T)
        np.maximum(D, 0.0, out=D)
        np.fill_diagonal(D, 0.0)
        return D
    diff = S[rows].astype(np.float64) - S[np.asarray(cols, dtype=np.intp)]
    return np.einsum("ij,ij->i", diff, diff)
