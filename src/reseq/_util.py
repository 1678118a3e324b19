"""Small shared helpers: atomic file writing, progress bars, cache directory, hashing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from .errors import ReseqError

__all__ = ["atomic_path", "cache_dir", "check_writable", "progress", "public_mode", "sha256_file"]

T = TypeVar("T")


def cache_dir(*parts: str) -> Path:
    """The reseq cache folder (``$RESEQ_CACHE_DIR`` or the platform's user cache dir), created."""
    root = os.environ.get("RESEQ_CACHE_DIR")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("reseq")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """Refuse to overwrite an existing file unless ``force``; return the path as a Path."""
    path = Path(path)
    if path.exists() and not force:
        raise ReseqError(f"{path} already exists; use --force to overwrite it")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    A crash or an exception leaves no half-written file and the old file untouched.
    """
    path = check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        public_mode(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
