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
batches per shard).

Decoding on the workers. :func:`sketch` takes frames decoded here and ships their pixels;
:func:`sketch_source` takes the *source* (a video file or a folder of images) and ships only
shard descriptions: a video is cut into ranges of :data:`SHARD` frames located by their
timestamps (one demux pass here, no decoding; each task seeks to the key frame before its range,
:func:`reseq.frames.decode_video_frames`), a folder into lists of :data:`SHARD` files. Each task
decodes, resizes (the working size is fixed here from the first frame), hashes and sketches its
shard; the client only hashes the source's bytes (the cache key of each shard: the sha256 of the
file or files, the range, the working size, the network, weights, ``d``, ``seed``, decoder
versions) and puts the shards back in source order, duplicates across shards mapped to their
first occurrence (distance exactly 0). The frames and labels are those of
:func:`reseq.frames.load_frames`, and the sketches equal ``sketch(load_frames(...))`` bit for bit
when no frame is repeated (float32 rounding otherwise). Left for later: the neighbour search as
tasks.

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
import json
import os
import struct
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cache as _cache
from ._util import progress as _progress
from ._util import release_pages
from .errors import ReseqError, ReseqWarning

__all__ = [
    "ACCURACY",
    "BATCH",
    "DEFAULT_D",
    "NONZEROS",
    "PROJECTION_VERSION",
    "SHARD",
    "SourceSketches",
    "projection",
    "sketch",
    "sketch_distances",
    "sketch_source",
]

#: Sketch length by default: chosen by measurement (see :data:`ACCURACY`).
DEFAULT_D = 1024
#: Non-zeros per input coordinate of the sparse sign projection.
NONZEROS = 4
#: Bump when the projection's construction changes (the cache key includes it).
PROJECTION_VERSION = "sjlt1"
SKETCH_FORMAT = "k1"  # bump when the shard layout changes
SOURCE_FORMAT = "s1"  # bump when a source shard's layout or its decoding changes
_SOURCE_HEAD = struct.Struct("<4sIII")  # magic, frames, d, bytes of the JSON labels
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


@dataclass
class SourceSketches:
    """The sketches of a frame source, decoded and sketched shard by shard
    (:func:`sketch_source`): row ``i`` of ``array`` is the frame labelled ``labels[i]`` (the
    labels :func:`reseq.frames.load_frames` gives), whose pixels hash to ``hashes[i]``
    (:func:`reseq.distances.frame_hashes`); ``size`` is the working size ``(width, height)``."""

    array: np.ndarray
    labels: list[str]
    hashes: list[str]
    size: tuple[int, int]
    source: str = ""

    def __len__(self) -> int:
        return len(self.array)


def _where() -> str:
    try:
        from distributed import get_worker

        return f"Dask worker {get_worker().address}"
    except (ImportError, ValueError):
        return "this process"


def _unseen(path, exc) -> ReseqError:
    why = getattr(exc, "strerror", None) or str(exc)
    return ReseqError(f"{_where()} cannot read {path}: {' '.join(str(why).split())[:160]}; the "
                      "workers must see the source at the same path as the client (a shared "
                      "file system), and it must not change during the run")


def _source_shard(kind: str, path: str, items, target: tuple[int, int], background, net: str,
                  d: int, seed: int, device: str, batch: int):
    """Decode, hash and sketch one shard of a source (a task: runs in-process or on a Dask
    worker). Returns ``(sketches, hashes, labels, skipped)``: one sketch per decoded frame
    (duplicates within the shard share one), and what did not decode."""
    try:
        return _source_shard_work(kind, path, items, target, background, net, d, seed, device,
                                  batch)
    except ReseqError as exc:
        message = str(exc)
    # raised afresh, without the chain of causes: Dask ships an exception with its causes, and
    # a decoder's own exception may not survive the trip (the client would get a bare repr)
    raise ReseqError(message)


def _source_shard_work(kind, path, items, target, background, net, d, seed, device, batch):
    from .distances import frame_hashes
    from .frames import _why, decode_image_files, decode_video_frames

    try:
        if kind == "video":
            with open(path, "rb"):
                pass
            index, wanted = items
            frames, missing = decode_video_frames(path, index, wanted, target=target,
                                                  background=background)
            skipped = [f"frame {i}" for i in missing]
        else:
            frames, failed = decode_image_files(items, target=target, background=background)
            for _label, exc in failed:  # the client read this file: this process cannot
                if isinstance(exc, (FileNotFoundError, PermissionError, NotADirectoryError)):
                    raise exc
            skipped = [f"{label}{_why(exc)}" for label, exc in failed]
    except OSError as exc:
        raise _unseen(exc.filename or path, exc) from None
    except ReseqError as exc:
        if "cannot read" in str(exc):
            raise _unseen(path, exc) from None
        raise
    images = frames.array
    hashes = frame_hashes(images)
    slot: dict[str, int] = {}
    rows = [slot.setdefault(h, len(slot)) for h in hashes]
    first = sorted({h: i for i, h in reversed(list(enumerate(hashes)))}.values())
    out = np.empty((len(images), d), np.float32)
    if first:
        out[:] = _shard_sketch(images[first], net, d, seed, device, batch)[rows]
    return out, hashes, frames.labels, skipped


def _pack(part) -> bytes:
    S, hashes, labels, skipped = part
    meta = json.dumps({"labels": labels, "skipped": skipped}).encode()
    return (_SOURCE_HEAD.pack(b"RSS1", len(S), S.shape[1], len(meta)) + meta
            + b"".join(bytes.fromhex(h) for h in hashes) + np.ascontiguousarray(S).tobytes())


def _unpack(data: bytes, d: int):
    head = _SOURCE_HEAD.size
    if len(data) < head:
        return None
    magic, n, dd, m = _SOURCE_HEAD.unpack_from(data)
    if magic != b"RSS1" or dd != d or len(data) != head + m + 32 * n + 4 * n * d:
        return None
    meta = json.loads(data[head:head + m])
    o = head + m
    hashes = [data[o + 32 * i:o + 32 * (i + 1)].hex() for i in range(n)]
    S = np.frombuffer(data, np.float32, n * d, o + 32 * n).reshape(n, d).copy()
    return S, hashes, meta["labels"], meta["skipped"]


def _source_kind(source) -> tuple[str, Path | None]:
    """(``"video"``, ``"folder"`` or ``""`` for anything else, the absolute path)."""
    from .frames import _ANIMATED_EXTENSIONS, IMAGE_EXTENSIONS

    try:
        text = os.fsdecode(os.fspath(source))
    except TypeError:
        raise ReseqError(f"source must be a path or 'sample:NAME', got {source!r}") from None
    if text.startswith("sample:"):
        from .assets import sample_source

        text = str(sample_source(text))
    path = Path(text).expanduser().absolute()  # workers may run in another folder
    try:
        st = path.stat()
    except OSError:
        return "", None  # load_frames says what is wrong
    if path.is_dir():
        return "folder", path
    ext = path.suffix.lower()
    if st.st_size == 0 or ext in IMAGE_EXTENSIONS or ext in _ANIMATED_EXTENSIONS:
        return "", path
    return "video", path


def sketch_source(source, size: int | str | None = 256, every: int = 1, net: str = "alex",
                  d: int = DEFAULT_D, seed: int = 0, *, max_frames: int | None = None,
                  upscale: bool = True, background=(255, 255, 255), device: str = "auto",
                  cache: bool | None = None, progress: bool = True, stats: dict | None = None,
                  scheduler: str | None = None) -> SourceSketches:
    """Sketch a video or a folder of images without decoding it here: the decoding, the network
    and the projection run as tasks over shards of frames (in this process, or on the workers
    of a Dask scheduler).

    ``source``, ``size``, ``every``, ``max_frames``, ``upscale`` and ``background`` mean what
    they mean to :func:`reseq.frames.load_frames`, and the frames are the same, pixel for pixel,
    with the same labels (unreadable images skipped, with a warning). The other parameters are
    those of :func:`sketch`.

    This process only reads the source: it hashes its bytes (the cache key, about 1 GB/s),
    lists a video's frame timestamps (one demux pass, no decoding) or a folder's files, and
    decodes the first frame, which fixes the working size for every shard. A video is cut into
    ranges of :data:`SHARD` kept frames, decoded from the key frame before each range
    (:func:`reseq.frames.decode_video_frames`); a folder into lists of :data:`SHARD` files.
    Each task decodes, hashes and sketches its frames; finished shards are cached (``sketches/``,
    keyed by the sha256 of the source's bytes, the frames of the shard, the working size, the
    background, the network, the LPIPS weights version, ``d``, ``seed`` and the decoder
    versions) and verified when read, so an interrupted run resumes. Duplicate frames, within a
    shard or across shards, all get the sketch of their first occurrence (distance exactly 0).

    With a ``scheduler`` the workers must see the source at the same path as this process (a
    shared file system; a relative path is made absolute); a worker that cannot read it is an
    error that says so. The per-shard function is the same in-process and on a worker, so the
    sketches are the same bit for bit whoever ran them (same kind of machine). They equal
    ``sketch(load_frames(source, ...))`` bit for bit when the source has no duplicate frames
    (the shards and the network batches are then the same); duplicates shift the batches, which
    changes sketches by float32 rounding only.

    Other sources (an animated image, a video whose frames have no timestamps, a sample that is
    neither) are decoded here by :func:`reseq.frames.load_frames` and go to :func:`sketch`.
    """
    from . import frames as fr
    from .distances import frame_hashes
    from .features import _check_net, resolve_device

    d = _check_d(d)
    net = _check_net(net)
    size = fr.parse_size(size)
    bg = fr._parse_background(background)
    fr._check_args(every, None, None, max_frames)
    asked, device = device, resolve_device(device)
    if cache is None:
        cache = not os.environ.get("RESEQ_NO_CACHE")
    scheduler = scheduler or os.environ.get("RESEQ_DASK_SCHEDULER") or None
    info = stats if stats is not None else {}
    t0 = time.perf_counter()
    kind, path = _source_kind(source)
    index = None
    if kind == "video":
        try:
            index = fr.video_index(path)
        except ReseqError as exc:
            if "as a video" not in str(exc):
                raise
        kept = list(range(0, len(index), every))[:max_frames] if index is not None else []
        if len(kept) < 2:
            kind = ""
    elif kind == "folder":
        files, skipped = fr._folder_files(path)
        files = files[::every][:max_frames]
        if len(files) < 2:
            kind = ""
        elif skipped:
            warnings.warn(f"{path}: skipped {len(skipped)} non-image file(s): "
                          f"{fr._summarize(skipped)}", ReseqWarning, stacklevel=2)

    def decoded_here() -> SourceSketches:
        frames = fr.load_frames(source, size=size, every=every, max_frames=max_frames,
                                background=bg, progress=progress, upscale=upscale)
        S = sketch(frames, net, d, seed, device=asked, cache=cache, progress=progress,
                   stats=info, scheduler=scheduler)
        info.update(decoded="client")
        return SourceSketches(S, frames.labels, frame_hashes(frames.array), frames.size,
                              str(source))

    if not kind:
        return decoded_here()
    from .assets import WEIGHTS_VERSION

    def key(*parts):
        import av
        import PIL

        h = hashlib.sha256(f"{SOURCE_FORMAT}|{net}|{WEIGHTS_VERSION}|{target}|{bg}|{d}|{seed}|"
                           f"{NONZEROS}|{PROJECTION_VERSION}|av {av.__version__}|"
                           f"PIL {PIL.__version__}|{kind}".encode())
        for p in parts:
            h.update(p if isinstance(p, bytes) else str(p).encode())
            h.update(b"|")
        return h

    if kind == "video":
        first, missing = fr.decode_video_frames(path, index, [0], size, upscale=upscale,
                                                background=bg)
        if missing:  # load_frames takes the next frame's size then
            return decoded_here()
        target = first.size
        digest = _sha256_file(path, progress)
        ranges = [kept[s:s + SHARD] for s in range(0, len(kept), SHARD)]
        items = [(index.part(r[0], r[-1] + 1), r) for r in ranges]
        keys = [key(digest, every, r[0], r[-1], len(r)) for r in ranges]
    else:
        readable, digests, unreadable = [], [], []
        for p, label in _progress(files, "hashing files", total=len(files),
                                  enabled=progress and len(files) > 16, unit="file"):
            try:
                digests.append(_sha256_file(p, False))
                readable.append((str(p), label))
            except OSError as exc:
                unreadable.append(f"{label}{fr._why(exc)}")
        target = None
        for p, label in readable:
            first, _ = fr.decode_image_files([(p, label)], size, upscale=upscale, background=bg)
            if len(first):
                target = first.size
                break
        if target is None or len(readable) < 2:
            return decoded_here()  # load_frames says what is wrong
        ranges = [list(range(s, min(s + SHARD, len(readable))))
                  for s in range(0, len(readable), SHARD)]
        items = [[readable[i] for i in r] for r in ranges]
        keys = [key(*(f"{digests[i]}:{readable[i][1]}" for i in r)) for r in ranges]
    folder = _cache.folder("sketches") if cache else None
    files_ = [folder / k.hexdigest()[:2] / f"{k.hexdigest()}.sks" if folder is not None
              else None for k in keys]
    parts: list = [None] * len(items)
    info.update(shards=len(items), shards_cached=0, decoded="workers" if scheduler else "tasks")
    for k, f in enumerate(files_):
        data = _cache.read_entry(f) if f is not None else None
        part = _unpack(data, d) if data is not None else None
        if part is not None:
            parts[k] = part
            info["shards_cached"] += 1
    todo = [k for k in range(len(items)) if parts[k] is None]
    wrote = False

    def done(k, part) -> None:
        nonlocal wrote
        parts[k] = part
        if files_[k] is not None:
            wrote = _cache.put(files_[k], _pack(part)) or wrote

    args = [(kind, str(path), items[k], target, bg, net, d, seed) for k in todo]
    desc = f"decoding + sketches ({net}, d={d}, {device if scheduler is None else scheduler})"
    try:
        if todo and scheduler is None:
            for k, a in zip(todo, _progress(args, desc, total=len(todo), enabled=progress,
                                            unit="shard")):
                done(k, _source_shard(*a, device, BATCH))
        elif todo:
            from distributed import as_completed

            with _dask_client(scheduler) as client:
                futures = [client.submit(_source_shard, *a, asked, BATCH, pure=False)
                           for a in args]
                where = {f.key: k for f, k in zip(futures, todo)}
                for fut in _progress(as_completed(futures, loop=client.loop), desc,
                                     total=len(todo), enabled=progress, unit="shard"):
                    done(where[fut.key], fut.result())
    finally:
        if wrote:
            _cache.evict()
    S = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, d), np.float32)
    hashes = [h for p in parts for h in p[1]]
    labels = [lb for p in parts for lb in p[2]]
    skipped = unreadable if kind == "folder" else []
    skipped += [s for p in parts for s in p[3]]
    seen: dict[str, int] = {}
    for i, h in enumerate(hashes):  # duplicates across shards: the first occurrence's sketch
        j = seen.setdefault(h, i)
        if j != i:
            S[i] = S[j]
    if len(S) < 2:
        raise ReseqError(f"{path}: need at least 2 frames, found {len(S)} decodable frames"
                         + (f" (unreadable: {fr._summarize(skipped, 3)})" if skipped else ""))
    if skipped:
        what = "unreadable image(s)" if kind == "folder" else "frame(s) that did not decode"
        warnings.warn(f"{path}: skipped {len(skipped)} {what}: {fr._summarize(skipped)}",
                      ReseqWarning, stacklevel=2)
    info.update(frames=len(S), distinct=len(seen), sketch_s=time.perf_counter() - t0)
    return SourceSketches(S, labels, hashes, target, str(source))


def _sha256_file(path, progress: bool) -> bytes:
    """sha256 of a file's bytes, streamed (a progress bar for files over 256 MB)."""
    h = hashlib.sha256()
    total = os.path.getsize(path)
    with open(path, "rb") as f:
        blocks = iter(lambda: f.read(1 << 24), b"")
        for block in _progress(blocks, f"hashing {Path(path).name}", total=-(-total >> 24),
                               enabled=progress and total > 1 << 28, unit="16MB"):
            h.update(block)
    return h.digest()


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
