"""Small shared helpers: output safety, resource limits, atomic file writing, progress bars,
cache directory, hashing.

Output safety (:func:`check_output_paths`): every command checks all of its outputs here before
any work starts. An output path is never empty, never a source (compared through symlinks and
hard links), never inside a source folder where it would add to or replace its frames, never a
folder holding files reseq did not write; ``force`` replaces only a file reseq is asked to write.

Resource limits (:func:`check_memory`, :func:`check_frame_count`): estimates of the memory a
step needs are checked before it runs against ``RESEQ_MAX_MEMORY`` (default: 80% of the
machine's memory) and output lengths against ``RESEQ_MAX_FRAMES`` (default 1,000,000).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from .errors import ReseqError

__all__ = [
    "FrameView",
    "Output",
    "atomic_path",
    "cache_dir",
    "check_checkpoint_name",
    "check_frame_count",
    "check_memory",
    "check_output_paths",
    "check_writable",
    "format_bytes",
    "frame_limit",
    "frames_in_order",
    "memory_limit",
    "os_error_message",
    "progress",
    "public_mode",
    "sha256_file",
]

T = TypeVar("T")


def cache_dir(*parts: str) -> Path:
    """The reseq cache folder (``$RESEQ_CACHE_DIR`` or the platform's user cache dir), created."""
    root = os.environ.get("RESEQ_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("reseq")
    path = Path(root, *parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReseqError(f"cannot use the cache folder {path}: {os_error_message(exc)} (set "
                         "RESEQ_CACHE_DIR to a writable folder)") from None
    return path


def os_error_message(exc: OSError) -> str:
    """The operating system's words for ``exc`` ("No space left on device"), one line."""
    text = exc.strerror or (os.strerror(exc.errno) if exc.errno else "") or str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """Refuse to overwrite an existing file unless ``force``; return the path as a Path.

    Also refuses an empty path, a folder, and anything that is not a regular file (a device,
    a pipe): ``force`` replaces a file, never anything else."""
    if not os.fspath(path).strip():
        raise ReseqError("the output path is empty; give a file name")
    path = Path(path)
    if path.is_dir():
        raise ReseqError(f"{path} is a folder; expected a file name")
    if path.exists() and not path.is_file():
        raise ReseqError(f"{path} exists and is not a regular file; reseq will not replace it")
    if path.exists() and not force:
        raise ReseqError(f"{path} already exists; use --force to overwrite it")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    A crash, an exception or a signal leaves no half-written file and the old file untouched;
    a failed write (full disk, read-only folder) is a :class:`ReseqError` naming ``path``.
    """
    path = check_writable(path, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise ReseqError(f"cannot write {path}: {os_error_message(exc)}") from None
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            public_mode(tmp_path)
            os.replace(tmp_path, path)
        except OSError as exc:
            if exc.errno is None:
                raise
            raise ReseqError(f"cannot write {path}: {os_error_message(exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            if tmp_path.exists():
                tmp_path.unlink()


# --------------------------------------------------------------------------------------------
# output safety

#: Extensions of the files a folder source reads as frames (kept equal to
#: :data:`reseq.frames.IMAGE_EXTENSIONS`; here to avoid an import cycle).
FRAME_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


@dataclass(frozen=True)
class Output:
    """One output of a command, for :func:`check_output_paths`.

    ``option`` names it in messages (``-o``, ``--sheet``); ``folder`` marks a folder reseq fills
    (a PNG sequence, a report); ``names`` are the fixed file names reseq writes into that folder
    (``--force`` may replace them); ``own`` recognises a file reseq wrote there earlier (the
    numbered PNGs of a previous run), which ``--force`` may replace too. Nothing else in the
    folder may be there."""

    path: str | os.PathLike | None
    option: str = "-o"
    folder: bool = False
    names: tuple[str, ...] = ()
    own: Callable[[Path], bool] | None = None


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _same(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return _real(a) == _real(b)


def _names(paths: Sequence[Path], n: int = 4) -> str:
    names = sorted(p.name for p in paths)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _check_parent(out: Output, text: str, path: Path) -> None:
    """The nearest existing folder above ``path`` is a folder and writable."""
    anc = Path(os.path.abspath(path)).parent
    while not os.path.lexists(anc) and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        what = "a broken symbolic link" if anc.is_symlink() and not anc.exists() else "a file"
        raise ReseqError(f"{out.option} {text}: {anc} is {what}, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        why = "permission denied"
        with contextlib.suppress(OSError):
            if os.statvfs(anc).f_flag & os.ST_RDONLY:
                why = "read-only file system"
        raise ReseqError(f"cannot write {text}: folder {anc} is not writable ({why})")


def _check_source(out: Output, text: str, path: Path, source: Path) -> None:
    if _same(path, source):
        raise ReseqError(f"{out.option} {text} is the source {source}; reseq never writes over "
                         "its input: choose another output")
    if not source.is_dir():
        return
    rp, rs = _real(path), _real(source)
    if rs in rp.parents:
        if out.folder:
            raise ReseqError(f"{out.option} {text} is inside the source folder {source}; "
                             "write the frames outside it")
        if path.suffix.lower() in FRAME_SUFFIXES:
            raise ReseqError(f"{out.option} {text} is inside the source folder {source} and "
                             "would add or replace one of its frames; write it outside")
    if out.folder and rp in rs.parents:
        raise ReseqError(f"{out.option} {text} contains the source {source}; choose a new or "
                         "empty folder")


def _check_folder(out: Output, text: str, path: Path, names: set[str], force: bool) -> None:
    if os.path.lexists(path) and not path.is_dir():
        raise ReseqError(f"{out.option} {text} exists and is not a folder")
    if not path.is_dir():
        return
    try:
        entries = list(path.iterdir())
    except OSError as exc:
        raise ReseqError(f"cannot read folder {text}: {os_error_message(exc)}") from None
    foreign = [e for e in entries
               if not (e.name in names and e.is_file() and not e.is_symlink())
               and not (out.own is not None and out.own(e))]
    if foreign:
        raise ReseqError(f"{out.option} {text} holds files reseq did not write "
                         f"({_names(foreign)}); give a new or empty folder")
    if entries and not force:
        named = sorted(e.name for e in entries if e.name in names)
        if named:
            raise ReseqError(f"{path / named[0]} already exists; use --force to overwrite it")
        raise ReseqError(f"folder {text} is not empty (reseq's output of an earlier run: "
                         f"{_names(entries)}); use --force to replace it")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ReseqError(f"cannot write into folder {text}: permission denied")


def check_output_paths(outputs: Sequence[Output], sources: Sequence[str | os.PathLike | None] = (),
                       force: bool = False) -> list[Path | None]:
    """Check every output of a command before any work starts; return them as Paths.

    Raises :class:`ReseqError` (one line) when an output path is empty; lies below a regular
    file or in a folder that cannot be written; is one of ``sources`` (the same file or folder,
    also through a symlink or a hard link); lies inside a source folder as a folder or as an
    image file (it would add to or replace the frames); is a folder that contains a source or
    holds files reseq did not write; exists without ``force``; or is the same path as another
    output. ``sources`` that do not exist (``sample:NAME``) are ignored.

    >>> import tempfile, pathlib
    >>> src = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_paths([Output(str(src))], sources=[src], force=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    reseq.errors.ReseqError: -o ... is the source ...; reseq never writes over its input: ...
    """
    checked: list[tuple[Output, str, Path]] = []
    for out in outputs:
        if out.path is None:
            continue
        text = os.fspath(out.path)
        if not text.strip():
            raise ReseqError(f"{out.option}: the output path is empty; give a file or folder name")
        checked.append((out, text, Path(text)))
    srcs = []
    for s in sources:
        if s is None:
            continue
        sp = Path(os.fspath(s))
        if os.fspath(s).startswith("sample:") or not os.path.lexists(sp):
            continue
        srcs.append(sp)
    # two outputs on one path
    seen: dict[Path, str] = {}
    for out, text, path in checked:
        key = _real(path)
        if key in seen:
            raise ReseqError(f"two outputs would be written to the same file: {seen[key]} and "
                             f"{out.option} {text}")
        seen[key] = f"{out.option} {text}"
    for out, text, path in checked:
        _check_parent(out, text, path)
        for sp in srcs:
            _check_source(out, text, path, sp)
        if out.folder:
            inside = {p.name for o, _, p in checked
                      if o is not out and _real(p).parent == _real(path)}
            _check_folder(out, text, path, set(out.names) | inside, force)
        else:
            check_writable(path, force)
    return [None if out.path is None else Path(os.fspath(out.path)) for out in outputs]


def check_checkpoint_name(path: str | os.PathLike, option: str = "-o") -> None:
    """Refuse a model checkpoint named like an image, a video or a data file (``m.png`` would
    hold a PyTorch pickle): the extension must not promise another format."""
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix in FRAME_SUFFIXES | {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".json",
                                   ".csv", ".npy", ".npz", ".txt", ".md", ".pdf", ".svg"}:
        raise ReseqError(f"{option} {os.fspath(path)}: a checkpoint is a PyTorch file; name it "
                         f".pt, not {suffix}")


# --------------------------------------------------------------------------------------------
# resource limits


def _parse_bytes(text: str, name: str) -> int:
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise ReseqError(f"{name}={text!r}: expected a size such as 8G, 512M or 1000000")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * scale)


def format_bytes(n: float) -> str:
    """``format_bytes(3 * 2**30)`` -> ``'3.0 GB'``."""
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def _physical_memory() -> int:
    total = 8 << 30
    with contextlib.suppress(ValueError, OSError, AttributeError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with contextlib.suppress(OSError, ValueError):  # a container's memory limit (cgroup v2)
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if text.isdigit():
            total = min(total, int(text))
    return total


def memory_limit() -> int:
    """Bytes a run may plan to use: ``$RESEQ_MAX_MEMORY`` (``8G``, ``512M``, bytes) or 80% of
    this machine's memory (of the container's limit, when lower)."""
    text = os.environ.get("RESEQ_MAX_MEMORY")
    if text:
        return _parse_bytes(text, "RESEQ_MAX_MEMORY")
    return int(0.8 * _physical_memory())


def check_memory(nbytes: float, what: str) -> None:
    """Refuse, before it starts, a step estimated to need more than :func:`memory_limit`."""
    limit = memory_limit()
    if nbytes > limit:
        raise ReseqError(f"{what} would need about {format_bytes(nbytes)} of memory, more than "
                         f"the limit of {format_bytes(limit)} (set RESEQ_MAX_MEMORY to change it)")


def frame_limit() -> int:
    """Most frames a run may write: ``$RESEQ_MAX_FRAMES`` or 1,000,000 (23 h at 12 fps)."""
    text = os.environ.get("RESEQ_MAX_FRAMES")
    if not text:
        return 1_000_000
    try:
        n = int(text)
    except ValueError:
        raise ReseqError(f"RESEQ_MAX_FRAMES={text!r}: expected a whole number") from None
    return max(n, 1)


def check_frame_count(n: float, what: str) -> None:
    """Refuse an output of more than :func:`frame_limit` frames."""
    limit = frame_limit()
    if n > limit:
        raise ReseqError(f"{what}: {n:,.0f} frames is more than the limit of {limit:,} "
                         "(set RESEQ_MAX_FRAMES to change it)")


def public_mode(path: str | os.PathLike, folder: bool = False) -> None:
    """Give a temporary file (mode 0600) or folder (0700) the user's usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if folder else 0o666) & ~umask)


def progress(iterable: Iterable[T], desc: str, total: int | None = None,
             enabled: bool = True, unit: str = "it") -> Iterable[T]:
    """A tqdm progress bar on stderr (hidden when disabled or when stderr is not a terminal)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False,
                disable=None, mininterval=0.5)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- frames on disk

def spill_limit() -> int:
    """Bytes of decoded frames kept in memory; above it, frames go to a temporary file on disk
    (:class:`DiskArray`): a quarter of :func:`memory_limit`."""
    return memory_limit() // 4


def temp_dir() -> str:
    """Where frames spilled to disk go: ``$RESEQ_TMPDIR``, else the system's temporary folder."""
    return os.environ.get("RESEQ_TMPDIR") or tempfile.gettempdir()


class DiskArray:
    """Frames written one after another to an anonymous temporary file, then mapped read-only.

    The file has no name (``tempfile.TemporaryFile``): it disappears when the last reference to
    its mapping goes, even after a crash, so nothing is ever left on the user's disk. Writing
    goes through the page cache, not this process's memory; reading through :meth:`finish`'s
    ``np.memmap``, whose resident pages :func:`release_pages` drops (they stay in the page cache)
    so that a pass over 10 GB of frames does not count 10 GB of resident memory.
    """

    def __init__(self, frame_shape: tuple[int, ...], expected: int = 0) -> None:
        import shutil

        self.frame_shape = tuple(int(x) for x in frame_shape)
        self.frame_bytes = int(np.prod(self.frame_shape))
        folder = temp_dir()
        need = self.frame_bytes * max(expected, 1)
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = None
        if free is not None and need > free:
            raise ReseqError(f"keeping {format_bytes(need)} of decoded frames on disk needs that "
                             f"much free space in {folder} (free: {format_bytes(free)}); set "
                             "RESEQ_TMPDIR to a folder with room, or lower --size")
        try:
            self._file = tempfile.TemporaryFile(dir=folder, prefix="reseq-frames-")
        except OSError as exc:
            raise ReseqError(f"cannot create a temporary file in {folder} for the frames: "
                             f"{os_error_message(exc)} (set RESEQ_TMPDIR)") from None
        self.count = 0

    def append(self, frames: np.ndarray) -> None:
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if frames.shape[1:] != self.frame_shape:
            raise ValueError(f"frame shape {frames.shape[1:]} != {self.frame_shape}")
        try:
            self._file.write(frames.tobytes())
        except OSError as exc:
            raise ReseqError(f"cannot write the frames to {temp_dir()}: "
                             f"{os_error_message(exc)} (set RESEQ_TMPDIR to a folder with room)"
                             ) from None
        self.count += len(frames)

    def finish(self) -> np.ndarray:
        """The frames as a read-only ``np.memmap`` of shape ``(count, *frame_shape)``."""
        self._file.flush()
        arr = np.memmap(self._file, dtype=np.uint8, mode="r",
                        shape=(self.count, *self.frame_shape))
        self._file.close()  # the mapping keeps the (nameless) file alive
        return arr


def is_on_disk(arr) -> bool:
    """Whether ``arr`` is (a view of) a file mapping such as :meth:`DiskArray.finish`'s."""
    return _mapping(arr) is not None


def _mapping(arr):
    import mmap

    base = arr
    for _ in range(64):
        if isinstance(base, mmap.mmap):
            return base
        nxt = getattr(base, "_mmap", None) or getattr(base, "base", None)
        if nxt is None or nxt is base:
            return None
        base = nxt
    return None


def release_pages(arr) -> None:
    """Drop this process's resident pages of a file-mapped array (no-op for arrays in memory):
    the data stays on disk and in the page cache, and is read again on the next access."""
    import mmap

    m = _mapping(arr)
    if m is not None and hasattr(m, "madvise"):
        try:
            m.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # a closed mapping, or a kernel without it
            pass


def iter_frames(images, chunk: int = 256) -> Iterator[np.ndarray]:
    """Iterate the frames of ``images`` (an array, possibly on disk); every ``chunk`` frames the
    pages already read are released (:func:`release_pages`), so memory stays flat."""
    on_disk = is_on_disk(images)
    for i in range(len(images)):
        yield images[i]
        if on_disk and i % chunk == chunk - 1:
            release_pages(images)
    if on_disk:
        release_pages(images)


class FrameView:
    """The frames ``images[idx]`` of an on-disk array, read one by one when asked for, not copied.

    What a writer needs of a frame array (``len``, ``shape``, ``dtype``, ``ndim``, ``view[i]``)
    without a second file of frames on disk: writing 10^6 frames in path order would otherwise
    first copy 110 GB. ``view[i]`` reads frame ``idx[i]``; a slice or index array gives
    :func:`take_frames` of those frames. It counts as on disk (:func:`is_on_disk`), so
    :func:`iter_frames` drops the pages it has read. Repeated indices (a chained loop) cost no
    disk at all.
    """

    def __init__(self, images, idx) -> None:
        self.base = images  # is_on_disk / release_pages follow .base to the mapping
        self.idx = np.asarray(idx, dtype=np.intp).ravel()
        self.shape = (len(self.idx), *images.shape[1:])
        self.dtype = images.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.base[int(self.idx[key])]
        return take_frames(self.base, self.idx[key])


def frames_in_order(images, idx):
    """``images[idx]`` for writing: a :class:`FrameView` (no copy) for frames on disk, else
    :func:`take_frames` (a copy in memory)."""
    return FrameView(images, idx) if is_on_disk(images) else take_frames(images, idx)


def take_frames(images, idx, chunk: int = 256) -> np.ndarray:
    """``images[idx]`` (a copy): in memory for an in-memory array; for one on disk, a new
    :class:`DiskArray`, copied in chunks, unless the result is small (a quarter of
    :func:`spill_limit`)."""
    idx = np.asarray(idx, dtype=np.intp).ravel()
    if not is_on_disk(images):
        return images[idx]
    shape = images.shape[1:]
    if len(idx) * int(np.prod(shape)) <= spill_limit() // 4:
        out = images[idx]
        release_pages(images)
        return out
    store = DiskArray(shape, len(idx))
    for a in range(0, len(idx), chunk):
        store.append(images[idx[a:a + chunk]])
        release_pages(images)
    return store.finish()
