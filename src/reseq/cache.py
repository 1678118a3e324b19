"""The on-disk cache: verified entries, atomic writes, a size cap with LRU eviction.

reseq keeps three kinds of derived data in its cache folder (``$RESEQ_CACHE_DIR`` or the
platform's user cache dir): per-frame deep features (``features/<net>-<weights>-<format>-<WxH>/``),
distance matrices of sets of frames (``matrices/``), and the pinned assets with the converted
LPIPS weights (``assets/``, see :mod:`reseq.assets`). Every entry is keyed by content (frame
hashes), model and version, so a stale entry is never looked up; this module makes sure that a
*damaged* entry is never used either.

Entries. An entry is one file: a small header, then the payload bytes. The header holds the
payload length and the sha256 of each ``chunk`` bytes of the payload (one digest for the whole
payload when ``chunk`` is 0), so a reader can verify all of it (:func:`read_entry`) or only the
chunks it reads (:func:`read_range`, for features streamed in column blocks). Hashing costs
about 0.6 ms per MB. A file that is truncated, zeroed, edited or unreadable fails the check: it
is deleted (when possible), a :class:`~reseq.errors.ReseqWarning` says so, and the reader gets
``None`` and recomputes.

Writing. :func:`write_entry` writes a temporary file in the entry's folder, fsyncs it and
renames it onto the entry (``os.replace``): readers see the old entry or the new one, never a
part, and concurrent writers of one entry each rename a complete file (the last one wins; both
are valid). The temporary file is removed on any error, a full disk included. :func:`put` is
the forgiving form used for caching: a failed write (read-only folder, full disk, a cache path
below a regular file) warns once per cache folder and the work goes on without the cache.

Size. Features, matrices and DAE embeddings (:mod:`reseq.evaluate.dae`) together are kept
under ``$RESEQ_CACHE_MAX`` bytes (default 20G; suffixes K, M, G, T are powers of 1024; ``0``
means no cap): :func:`evict` removes the least recently used entries (a read refreshes an
entry's modification time) until the total fits.
It runs after each distance computation that wrote to the cache, so one run may pass the cap
until it ends. Assets are not counted and never evicted. ``reseq cache info|clear`` shows and
empties the cache (:func:`usage`, :func:`clear`).

>>> parse_size("500M"), parse_size("20G") == 20 * 1024**3, parse_size("1024")
(524288000, True, 1024)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import tempfile
import time
import warnings
from pathlib import Path

from .errors import ReseqError, ReseqWarning

__all__ = [
    "DEFAULT_MAX",
    "KINDS",
    "check_entry",
    "clear",
    "evict",
    "folder",
    "max_bytes",
    "parse_size",
    "put",
    "read_entry",
    "read_range",
    "root",
    "usage",
    "write_entry",
]

#: Default size cap of features + matrices (``$RESEQ_CACHE_MAX``): about 1100 VGG frames at
#: 256 px, or 15000 AlexNet frames.
DEFAULT_MAX = "20G"
#: The cache sub-folders holding evictable entries.
KINDS = ("features", "matrices", "dae-embeddings", "sketches")

_MAGIC = b"RESEQ\x00E1"
_HEAD = struct.Struct("<8sQQQ")  # magic, payload bytes, chunk bytes, number of digests
_DIGEST = 32  # sha256
_ENTRY_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]+$")  # <hash>.<ext>: what reseq writes
_PART_NAME = re.compile(r"^\.[0-9a-f]{64}\.[a-z0-9]+\.[^/]*\.part$")  # a write under way
_STALE_S = 3600.0  # a temporary file this old belongs to a killed run
_unwritable: set[str] = set()  # cache roots whose write failure was already reported


def root() -> Path:
    """The cache folder (``$RESEQ_CACHE_DIR`` or the platform's user cache dir); not created."""
    path = os.environ.get("RESEQ_CACHE_DIR")
    if not path:
        import platformdirs

        path = platformdirs.user_cache_dir("reseq")
    return Path(path)


def _warn_unwritable(where: Path, exc: OSError) -> None:
    key = str(root())
    if key in _unwritable:
        return
    _unwritable.add(key)
    reason = exc.strerror or type(exc).__name__
    warnings.warn(f"cannot write to the cache at {where} ({reason}); running without the cache "
                  "(set RESEQ_CACHE_DIR to a writable folder)", ReseqWarning, stacklevel=3)


def folder(*parts: str) -> Path | None:
    """The cache sub-folder ``parts``, created; ``None`` (with one warning) if it cannot be."""
    path = root().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _warn_unwritable(path, exc)
        return None
    return path


def _header(payload: memoryview, chunk: int) -> bytes:
    n = payload.nbytes
    step = chunk if chunk > 0 else max(n, 1)
    digests = [hashlib.sha256(payload[s:s + step]).digest() for s in range(0, n, step)]
    return _HEAD.pack(_MAGIC, n, chunk, len(digests)) + b"".join(digests)


def _as_bytes(data) -> memoryview:
    view = memoryview(data)
    if not view.contiguous:
        raise ValueError("cache payloads must be contiguous")
    return view.cast("B")


def write_entry(path: str | os.PathLike, data, chunk: int = 0) -> None:
    """Write ``data`` (bytes or a contiguous array) as a verified entry at ``path``, atomically.

    ``chunk`` > 0 stores one digest per ``chunk`` bytes, so that :func:`read_range` can verify
    parts. Raises ``OSError`` on failure, leaving no temporary file behind.
    """
    path = Path(path)
    payload = _as_bytes(data)
    head = _header(payload, chunk)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(head)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def put(path: str | os.PathLike, data, chunk: int = 0) -> bool:
    """:func:`write_entry` for caching: on failure warn once (per cache folder), return False."""
    try:
        write_entry(path, data, chunk)
    except OSError as exc:
        _warn_unwritable(Path(path).parent, exc)
        return False
    return True


def _discard(path: Path, reason: str) -> None:
    try:
        path.unlink()
    except OSError:
        pass
    warnings.warn(f"discarded damaged cache entry {path} ({reason}); recomputing it",
                  ReseqWarning, stacklevel=3)


def _read_head(f, path: Path, size: int | None) -> tuple[int, int, int]:
    raw = f.read(_HEAD.size)
    if len(raw) < _HEAD.size:
        raise _Bad("truncated header")
    magic, n, chunk, count = _HEAD.unpack(raw)
    step = chunk if chunk > 0 else max(n, 1)
    if magic != _MAGIC or count != -(-n // step) or (size is not None and n != size):
        raise _Bad("bad header")
    if os.fstat(f.fileno()).st_size != _HEAD.size + count * _DIGEST + n:
        raise _Bad("wrong file size")
    return n, step, count


class _Bad(Exception):
    pass


def _touch(path: Path) -> None:
    try:
        os.utime(path)  # least-recently-used order for eviction
    except OSError:
        pass


def read_entry(path: str | os.PathLike, size: int | None = None) -> bytes | None:
    """The verified payload of the entry at ``path`` (of ``size`` bytes, when given).

    ``None`` when there is no entry; ``None`` with a warning, the file deleted, when it is
    damaged or unreadable. A successful read marks the entry as recently used.
    """
    path = Path(path)

    def read(f):
        n, step, count = _read_head(f, path, size)
        return step, f.read(count * _DIGEST), f.read(n)

    got = _open_entry(path, read)
    if got is None or not _verified(path, *got):
        return None
    _touch(path)
    return got[2]


def _open_entry(path: Path, read):
    """``read(f)`` on the open entry; ``None`` when it is missing, or (discarded with a warning)
    damaged or unreadable."""
    try:
        with open(path, "rb") as f:
            return read(f)
    except FileNotFoundError:
        return None
    except _Bad as exc:
        _discard(path, str(exc))
    except OSError as exc:
        _discard(path, f"unreadable: {exc.strerror or exc}")
    return None


def _verified(path: Path, step: int, digests: bytes, data: bytes) -> bool:
    """Whether every ``step``-byte chunk of ``data`` has its digest; discards the entry if not."""
    view = memoryview(data)
    for k in range(len(digests) // _DIGEST):
        if hashlib.sha256(view[k * step:(k + 1) * step]).digest() != digests[k * _DIGEST:(k + 1) * _DIGEST]:
            _discard(path, "checksum mismatch")
            return False
    return True


def read_range(path: str | os.PathLike, start: int, stop: int,
               size: int | None = None) -> bytes | None:
    """Bytes ``start:stop`` of the entry's payload, verifying only the chunks they touch.

    Same contract as :func:`read_entry`. Reads aligned to the entry's chunks read nothing more.
    """
    path = Path(path)

    def read(f):
        n, step, count = _read_head(f, path, size)
        if not 0 <= start <= stop <= n:
            raise ValueError(f"range {start}:{stop} outside an entry of {n} bytes")
        c0, c1 = start // step, -(-stop // step)
        f.seek(_HEAD.size + c0 * _DIGEST)
        digests = f.read((c1 - c0) * _DIGEST)
        f.seek(_HEAD.size + count * _DIGEST + c0 * step)
        return step, digests, f.read(min(n, c1 * step) - c0 * step), c0

    got = _open_entry(path, read)
    if got is None or not _verified(path, *got[:3]):
        return None
    step, _, data, c0 = got
    if c0 == 0:
        _touch(path)
    return data[start - c0 * step: stop - c0 * step]


def check_entry(path: str | os.PathLike, size: int) -> bool:
    """Whether ``path`` holds an entry of ``size`` payload bytes (header and file size only;
    a damaged header is discarded with a warning). The content is verified when read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            _read_head(f, path, size)
    except FileNotFoundError:
        return False
    except _Bad as exc:
        _discard(path, str(exc))
        return False
    except OSError as exc:
        _discard(path, f"unreadable: {exc.strerror or exc}")
        return False
    return True


# --------------------------------------------------------------------------- size and eviction

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """Bytes from ``"20G"``, ``"500M"``, ``"1.5G"``, ``"4096"`` (K/M/G/T: powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*", str(text), re.IGNORECASE)
    if m is None:
        raise ReseqError(f"RESEQ_CACHE_MAX={text!r} is not a size; use bytes or e.g. 500M, 20G")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def max_bytes() -> int:
    """The cap on features + matrices: ``$RESEQ_CACHE_MAX`` or :data:`DEFAULT_MAX` (0: none)."""
    return parse_size(os.environ.get("RESEQ_CACHE_MAX") or DEFAULT_MAX)


def _entries(top: Path, parts: bool = False) -> list[tuple[float, int, Path]]:
    """(mtime, bytes, path) of every entry file reseq wrote below ``top`` (or, with ``parts``,
    of its temporary files)."""
    pattern = _PART_NAME if parts else _ENTRY_NAME
    out = []
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            if pattern.match(name):
                p = Path(dirpath, name)
                try:
                    st = p.stat()
                except OSError:
                    continue
                out.append((st.st_mtime, st.st_size, p))
    return out


def evict(limit: int | None = None) -> tuple[int, int]:
    """Delete least recently used entries of :data:`KINDS` until they total at most ``limit``
    bytes (default :func:`max_bytes`; 0 = no cap). Returns (files, bytes) removed."""
    limit = max_bytes() if limit is None else limit
    if limit <= 0:
        return 0, 0
    files = freed = 0
    now = time.time()
    for mtime, size, path in (e for kind in KINDS for e in _entries(root() / kind, parts=True)):
        if now - mtime > _STALE_S:  # left by a killed run
            try:
                path.unlink()
                files, freed = files + 1, freed + size
            except OSError:
                pass
    entries = [e for kind in KINDS for e in _entries(root() / kind)]
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            continue
        total -= size
        files += 1
        freed += size
    return files, freed


def usage() -> dict[str, tuple[int, int]]:
    """Entries and bytes per cache kind: ``features/<net>-<weights>-<format>-<WxH>``,
    ``matrices``, ``assets/<name>-<version>``, and any other folder reseq keeps there."""
    base = root()
    out: dict[str, tuple[int, int]] = {}
    if not base.is_dir():
        return out
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        if sub.name == "features":
            for key in sorted(p for p in sub.iterdir() if p.is_dir()):
                ents = _entries(key)
                out[f"features/{key.name}"] = (len(ents), sum(e[1] for e in ents))
        elif sub.name in KINDS:
            ents = _entries(sub)
            out[sub.name] = (len(ents), sum(e[1] for e in ents))
        else:
            for inner in sorted(sub.iterdir()) if sub.name == "assets" else [sub]:
                sizes = [f.stat().st_size for f in inner.rglob("*") if f.is_file()] \
                    if inner.is_dir() else [inner.stat().st_size]
                out[f"{sub.name}/{inner.name}" if inner is not sub else sub.name] = \
                    (len(sizes), sum(sizes))
    return out


def clear(assets: bool = False) -> tuple[int, int]:
    """Delete every entry of :data:`KINDS` (and, with ``assets``, the fetched assets and
    converted weights); only files reseq wrote. Returns (files, bytes) removed."""
    base = root()
    files = freed = 0
    for kind in KINDS:
        top = base / kind
        for _, size, path in _entries(top) + _entries(top, parts=True):
            try:
                path.unlink()
            except OSError:
                continue
            files += 1
            freed += size
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            if Path(dirpath) != top:
                try:
                    os.rmdir(dirpath)  # only once empty: nothing reseq did not write goes
                except OSError:
                    pass
    if assets:
        from .assets import ASSETS

        inside = base.resolve()
        for a in ASSETS.values():
            dest = base / "assets" / f"{a.name}-{a.version}"
            if not (dest / ".reseq-asset.json").is_file() or inside not in dest.resolve().parents:
                continue  # not an extraction of reseq's, or one reached through a link: keep
            sizes = [f.stat().st_size for f in dest.rglob("*") if f.is_file()]
            shutil.rmtree(dest, ignore_errors=True)
            if not dest.exists():
                files += len(sizes)
                freed += sum(sizes)
    return files, freed
