"""Frames in: any frame source becomes one ``(N, H, W, 3)`` uint8 array with provenance labels.

:func:`load_frames` accepts

- **a folder of images** (png, jpg/jpeg, webp, bmp, tif/tiff, gif), read in natural order
  (``2.png`` before ``10.png``). Files with other extensions and unreadable images are skipped
  with a warning. A folder with no images of its own but with sub-folders of images (such as
  ``sample:kenney``) is read one level deep, sub-folders in natural order, labels
  ``sub/name.png``. Labels are the file names.
- **a video file** through PyAV (mp4, mov, mkv, webm, avi, mpg, ...; anything FFmpeg opens):
  every ``every``-th frame, from ``start`` to ``end`` seconds, at most ``max_frames``. Labels are
  ``"frame 120 @ 4.000s"`` (frame number in the stream, presentation time). A file that ends
  early (truncated, corrupt tail) keeps the frames decoded before the damage, with a warning; a
  file of which fewer than two frames decode is an error.
- **an animated GIF, APNG or WebP** (or multi-page TIFF): every frame, composed with the file's
  disposal and blending rules (GIF, WebP, TIFF by Pillow; APNG by FFmpeg through PyAV, whose
  alpha blending of semi-transparent pixels is exact, with Pillow as the fallback). Labels
  ``"frame 3 @ 0.300s"``.
- ``"sample:NAME"``, a built-in sample from :mod:`reseq.assets` (``sample:bunny``,
  ``sample:kenney-robot``, ...).

A single still image is an error: sequencing needs at least two frames.

Colour: every frame becomes 8-bit RGB. Transparent pixels (RGBA, LA, palette transparency) are
composited onto ``background`` (white by default); grayscale and palette images are expanded;
16-bit images are scaled to 8 bits (``round(v / 257)``), not clipped.

Size policy (``size``, default 256): the *working size* is set by the first frame: its long
edge is scaled to ``size`` pixels (up or down) keeping its aspect ratio; ``size=None`` keeps the
first frame's native size. Every frame with a different native size is *letterboxed*: scaled to
fit inside the working size, keeping its aspect, and centred on the background colour, so no
content is ever cropped or distorted. Resampling is Pillow's Lanczos filter (with
``reducing_gap`` :data:`REDUCING_GAP`), deterministic; decoding and resizing run in a few
threads, which never changes the result.

>>> import numpy as np
>>> f = Frames(np.zeros((3, 4, 6, 3), np.uint8), ["a.png", "b.png", "c.png"], "demo")
>>> len(f), f.height, f.width, f[1:].labels
(3, 4, 6, ['b.png', 'c.png'])
>>> frame_index(f, "b"), frame_index(f, "c.png"), frame_index(f, "-1")
(1, 2, 2)
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from ._util import DiskArray, spill_limit, take_frames
from ._util import progress as _progress
from .errors import ReseqError, ReseqWarning

__all__ = [
    "IMAGE_EXTENSIONS",
    "REDUCING_GAP",
    "VIDEO_EXTENSIONS",
    "Frames",
    "VideoIndex",
    "decode_image_files",
    "decode_video_frames",
    "frame_index",
    "load_frames",
    "natural_key",
    "parse_size",
    "video_index",
]

logger = logging.getLogger(__name__)

#: Files a folder source reads (one frame each: an animated file in a folder gives its first).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".ogg", ".flv",
    ".wmv", ".ts", ".mts", ".m2ts", ".3gp", ".y4m", ".mxf", ".vob", ".dv",
})
_ANIMATED_EXTENSIONS = frozenset({".gif", ".png", ".apng", ".webp", ".tif", ".tiff"})
#: Pillow's ``reducing_gap`` for Lanczos resizing: large reductions first shrink by an integer
#: factor with a box filter; 2.0 is ~3x faster than exact Lanczos on HD video frames and
#: differs from it by ~0.3 grey levels on average.
REDUCING_GAP = 2.0
_PROGRESS_MIN = 16  # show a progress bar above this many frames

Color = tuple[int, int, int]


@dataclass
class Frames:
    """Frames at the working size, with one provenance label each.

    ``array`` is ``(N, H, W, 3)`` uint8, what the networks see (in memory, or, when the frames
    would take more than a quarter of the memory limit, a read-only ``np.memmap`` of a nameless
    temporary file: :class:`reseq._util.DiskArray`); ``labels[i]`` names frame ``i``
    as the user knows it (file name, or video frame number and time); ``source`` is where the
    frames came from. Indexing with an int, a slice, an index array or a boolean mask returns a
    :class:`Frames` subset with the matching labels.
    """

    array: np.ndarray
    labels: list[str]
    source: str = ""
    native_sizes: list[tuple[int, int]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"Frames.array must be (N, H, W, 3) uint8, got {arr.shape} {arr.dtype}")
        self.array = arr
        self.labels = [str(x) for x in self.labels]
        if len(self.labels) != len(arr):
            raise ValueError(f"{len(self.labels)} labels for {len(arr)} frames")
        if self.native_sizes is not None and len(self.native_sizes) != len(arr):
            raise ValueError("native_sizes must have one entry per frame")

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, idx) -> Frames:
        if isinstance(idx, (int, np.integer)):
            n = len(self)
            if not -n <= idx < n:
                raise IndexError(f"frame index {idx} out of range for {n} frames")
            idx = [int(idx) % n]
        elif isinstance(idx, slice):
            idx = list(range(len(self)))[idx]
        else:
            arr = np.asarray(idx)
            if arr.dtype == bool:
                if arr.shape != (len(self),):
                    raise IndexError("boolean mask must have one entry per frame")
                arr = np.flatnonzero(arr)
            idx = [int(i) for i in arr.reshape(-1)]
        labels = [self.labels[i] for i in idx]
        sizes = None if self.native_sizes is None else [self.native_sizes[i] for i in idx]
        return Frames(take_frames(self.array, idx), labels, self.source, sizes)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.array)

    @property
    def height(self) -> int:
        return int(self.array.shape[1])

    @property
    def width(self) -> int:
        return int(self.array.shape[2])

    @property
    def size(self) -> tuple[int, int]:
        """The working size as (width, height)."""
        return self.width, self.height

    def __repr__(self) -> str:
        first = self.labels[0] if self.labels else ""
        last = self.labels[-1] if self.labels else ""
        return (f"Frames(n={len(self)}, size={self.width}x{self.height}, source={self.source!r}, "
                f"labels={first!r}..{last!r})")


# --------------------------------------------------------------------------- small helpers


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers numerically, case-insensitively.

    >>> sorted(["frame10.png", "frame2.png", "Frame3.png", "10.png", "2.png"], key=natural_key)
    ['2.png', '10.png', 'frame2.png', 'Frame3.png', 'frame10.png']
    """
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p), name


def parse_size(value: str | int | None) -> int | None:
    """Parse a ``--size`` value: a positive long edge in pixels, or ``native``/``none`` (None).

    >>> parse_size("256"), parse_size("native"), parse_size(None), parse_size(64)
    (256, None, None, 64)
    """
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        n = int(value)
    else:
        text = str(value).strip().lower()
        if text in ("native", "none", "original", ""):
            return None
        try:
            n = int(text)
        except ValueError:
            raise ReseqError(f"--size must be a positive number of pixels or 'native', "
                             f"got {value!r}") from None
    if n < 1:
        raise ReseqError(f"--size must be a positive number of pixels or 'native', got {value!r}")
    return n


def _parse_background(background) -> Color:
    if isinstance(background, str):
        from PIL import ImageColor

        try:
            rgb = ImageColor.getrgb(background)
        except ValueError:
            raise ReseqError(f"unknown background colour {background!r}") from None
        return int(rgb[0]), int(rgb[1]), int(rgb[2])
    try:
        r, g, b = (int(c) for c in background)
    except (TypeError, ValueError):
        raise ReseqError(f"background must be an (r, g, b) triple, got {background!r}") from None
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise ReseqError(f"background components must be 0..255, got {background!r}")
    return r, g, b


def _stem(label: str) -> str:
    root, ext = os.path.splitext(label)
    return root if ext.lower() in IMAGE_EXTENSIONS else label


def frame_index(frames: Frames | Sequence[str], key: str | int) -> int:
    """Resolve a frame as the user knows it to its 0-based index.

    ``key`` may be a label (``"0012.png"``), a label without its extension (``"0012"``), the
    ``"frame 120"`` part of a video label, a file name inside a sub-folder label
    (``"robot_walk0"`` for ``"robot/robot_walk0.png"``), or a 0-based integer index (negative
    counts from the end). Names win over indices: in a folder ``1.png ... 20.png``, ``"12"`` is
    ``12.png``. Raises :class:`ReseqError` when nothing or more than one frame matches.
    """
    labels = frames.labels if isinstance(frames, Frames) else list(frames)
    text = str(key).strip()

    def unique(matches: list[int], how: str) -> int | None:
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(labels[i] for i in matches[:5])
            raise ReseqError(f"frame {text!r} is ambiguous: {how} {names}")
        return None

    for how, name_of in [
        ("labels", lambda s: s),
        ("names without extension", _stem),
        ("frame numbers", lambda s: s.split(" @ ")[0]),
        ("file names", lambda s: s.rsplit("/", 1)[-1]),
        ("file names without extension", lambda s: _stem(s.rsplit("/", 1)[-1])),
    ]:
        found = unique([i for i, s in enumerate(labels) if name_of(s) == text], how)
        if found is not None:
            return found
    if re.fullmatch(r"[+-]?\d+", text):
        i = int(text)
        if -len(labels) <= i < len(labels):
            return i % len(labels)
        raise ReseqError(f"frame index {i} is out of range: there are {len(labels)} frames")
    sample = ", ".join(labels[:3]) + (", ..." if len(labels) > 3 else "")
    raise ReseqError(f"no frame named {text!r} (labels look like: {sample}; or give an index)")


# --------------------------------------------------------------------------- colour & size


def _to_rgb(im: Image.Image, background: Color) -> Image.Image:
    """Any Pillow image -> 8-bit RGB, compositing transparency onto ``background``."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im)
        if mode == "F":
            arr = arr.astype(np.float64)
            hi = float(np.nanmax(arr)) if arr.size else 0.0
            arr8 = np.clip(np.rint(arr * (255.0 if hi <= 1.0 else 1.0)), 0, 255)
        else:
            arr = arr.astype(np.int64)
            # 16-bit data (I;16*, or I holding 0..65535): scale, don't clip.
            arr8 = np.clip((arr + 128) // 257, 0, 255) if mode != "I" or arr.max() > 255 else arr
        gray = Image.fromarray(arr8.astype(np.uint8), "L")
        return gray.convert("RGB")
    if (mode == "P" and "transparency" in im.info) or mode in ("PA", "LA", "La", "RGBa"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        base = Image.new("RGB", im.size, background)
        base.paste(im, mask=im.getchannel("A"))
        return base
    return im.convert("RGB")


def _working_size(native: tuple[int, int], size: int | None,
                  upscale: bool = True) -> tuple[int, int]:
    w, h = native
    if size is None or (not upscale and size >= max(w, h)):
        return w, h
    scale = size / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _fit(im: Image.Image, target: tuple[int, int], background: Color) -> Image.Image:
    """Resize ``im`` (RGB) to ``target``, letterboxing when the aspect ratio differs."""
    if im.size == target:
        return im
    tw, th = target
    w, h = im.size
    if w * th == h * tw:  # same aspect: plain resize
        return im.resize(target, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    scale = min(tw / w, th / h)
    nw, nh = max(1, min(tw, round(w * scale))), max(1, min(th, round(h * scale)))
    inner = im.resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    canvas = Image.new("RGB", target, background)
    canvas.paste(inner, ((tw - nw) // 2, (th - nh) // 2))
    return canvas


_BOMBS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, *_BOMBS)


def _why(exc: BaseException) -> str:
    """Why a file was skipped, for the warning: '' when 'unreadable' says it all."""
    if isinstance(exc, PermissionError):
        return " (permission denied)"
    if isinstance(exc, _BOMBS):
        return " (too many pixels: a decompression bomb?)"
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return f" ({exc.strerror})"
    return ""


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


class _SizedLoader(functools.partial):
    """A loader called with the working size (None for the first frame), returning
    ``(image, native size)``; the image may already be at the working size."""


class _Assembler:
    """Collects frames in order, fixing the working size on the first one.

    Decoding files, colour conversion and resizing run in a small thread pool (Pillow releases
    the GIL for them); results are kept in input order, so the output does not depend on it.
    """

    def __init__(self, size: int | None, background: Color, workers: int | None = None,
                 upscale: bool = True, expected: int | None = None) -> None:
        from ._util import memory_limit

        self.size = size
        self.upscale = upscale
        self.expected = expected  # frames the source should give, for the memory estimate
        self.limit = memory_limit()
        self.frame_bytes = 0
        self.background = background
        self.target: tuple[int, int] | None = None
        self.first_native: tuple[int, int] | None = None
        self.arrays: list[np.ndarray] = []
        self.disk: DiskArray | None = None  # the frames, once they outgrow memory
        self.labels: list[str] = []
        self.native: list[tuple[int, int]] = []
        self.failed: list[tuple[str, BaseException]] = []
        self.letterboxed = 0
        self.last_label = ""
        self._pending: deque = deque()
        n = _default_workers() if workers is None else workers
        self._pool = ThreadPoolExecutor(n, thread_name_prefix="reseq-frames") if n > 1 else None
        self._window = 4 * n

    def __enter__(self) -> _Assembler:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, item, label: str) -> None:
        """Add a Pillow image, or a zero-argument callable returning one (run in the pool)."""
        self.last_label = label
        if self.target is None or self._pool is None:
            self._store(label, self._run(item))
            return
        self._pending.append((label, self._pool.submit(self._run, item)))
        if len(self._pending) >= self._window:
            self._drain(self._window // 2)

    def _run(self, item):
        """Decode/convert/resize one item: an image, a callable returning one, or a
        :class:`_SizedLoader` that resizes on its own and returns ``(image, native size)``."""
        if self.target is None and isinstance(item, _SizedLoader):  # a video's first frame
            frame = item.args[0]
            self._check_memory(_working_size((frame.width, frame.height), self.size,
                                             self.upscale))
        try:
            if isinstance(item, _SizedLoader):
                im, native = item(self.target)
            elif callable(item):
                im, native = item(), None
            else:
                im, native = item, None
            rgb = _to_rgb(im, self.background)
        except _UNREADABLE as exc:
            return exc
        native = native or rgb.size
        if self.target is None:  # first frame, always on the calling thread
            target = _working_size(rgb.size, self.size, self.upscale)
            self._check_memory(target)
            self.target = target
            self.first_native = native
        return np.asarray(_fit(rgb, self.target, self.background), dtype=np.uint8), native

    def _check_memory(self, target: tuple[int, int]) -> None:
        """Refuse a working size whose frames would not fit (before resizing the first)."""
        from ._util import check_memory

        self.frame_bytes = target[0] * target[1] * 3
        n = max(self.expected or 1, 1)
        if n * self.frame_bytes > spill_limit():  # they will go to a temporary file on disk;
            # the frames being decoded and resized at once must still fit in memory
            busy = self._window + 2
            check_memory(3 * busy * self.frame_bytes,
                         f"{busy} frames at {target[0]}x{target[1]} px being decoded at once")
            return
        check_memory(2 * n * self.frame_bytes + self.frame_bytes,
                     f"{n:,} frame{'s' if n > 1 else ''} at {target[0]}x{target[1]} px")

    def _store(self, label: str, result) -> None:
        if isinstance(result, BaseException):
            self.failed.append((label, result))
            return
        array, native = result
        if self.disk is None and (max(self.expected or 0, len(self.arrays) + 1)
                                  * self.frame_bytes > spill_limit()):
            # more frames than memory should hold (expected, or already there): to a nameless
            # temporary file from here on
            self.disk = DiskArray(array.shape, max(self.expected or 0, len(self.arrays) + 1))
            for a in range(0, len(self.arrays), 256):
                self.disk.append(np.stack(self.arrays[a:a + 256]))
            self.arrays = []
        if native != self.first_native:
            self.letterboxed += 1
        if self.disk is not None:
            self.disk.append(array[None])
        else:
            self.arrays.append(array)
        self.native.append(native)
        self.labels.append(label)

    def _drain(self, keep: int = 0) -> None:
        while len(self._pending) > keep:
            label, future = self._pending.popleft()
            self._store(label, future.result())

    def __len__(self) -> int:
        return len(self.arrays) + len(self._pending) + (self.disk.count if self.disk else 0)

    def finish(self) -> None:
        self._drain()

    def result(self, source: str) -> Frames:
        self._drain()
        if len(self.labels) < 2:
            raise ReseqError(f"{source}: need at least 2 frames, got {len(self.labels)}")
        if self.letterboxed:
            logger.info("%s: %d frames of other sizes letterboxed to %dx%d", source,
                        self.letterboxed, *self.target)
        array = self.disk.finish() if self.disk is not None else np.stack(self.arrays)
        return Frames(array, self.labels, source, self.native)


# --------------------------------------------------------------------------- sources


def _open_image(path: Path) -> Image.Image:
    """Open and decode one image file, applying its EXIF orientation."""
    with Image.open(path) as im:
        im.load()
        return ImageOps.exif_transpose(im)


def _folder_files(folder: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """(image files with labels, skipped non-image names) of a folder, natural order."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: natural_key(e.name))
    except PermissionError:
        raise ReseqError(f"cannot read folder {folder}: permission denied") from None
    except OSError as exc:
        raise ReseqError(f"cannot read folder {folder}: {exc.strerror or exc}") from None
    images, skipped, subdirs = [], [], []
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            is_dir = e.is_dir()
        except OSError as exc:  # a symlink loop, an entry that vanished
            skipped.append(f"{e.name} ({exc.strerror or exc})")
            continue
        if is_dir:
            subdirs.append(Path(e.path))
        elif Path(e.name).suffix.lower() in IMAGE_EXTENSIONS:
            images.append((Path(e.path), e.name))
        else:
            skipped.append(e.name)
    if not images and subdirs:  # one level deep, e.g. a folder of characters
        for sub in subdirs:
            inner, inner_skipped = _folder_files_flat(sub)
            images.extend((p, f"{sub.name}/{p.name}") for p in inner)
            skipped.extend(f"{sub.name}/{s}" for s in inner_skipped)
    return images, skipped


def _folder_files_flat(folder: Path) -> tuple[list[Path], list[str]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: natural_key(e.name))
    except OSError as exc:
        raise ReseqError(f"cannot read folder {folder}: {exc.strerror or exc}") from None
    images, skipped = [], []
    for e in entries:
        try:
            if e.name.startswith(".") or e.is_dir():
                continue
        except OSError as exc:
            skipped.append(f"{e.name} ({exc.strerror or exc})")
            continue
        if Path(e.name).suffix.lower() in IMAGE_EXTENSIONS:
            images.append(Path(e.path))
        else:
            skipped.append(e.name)
    return images, skipped


def _summarize(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _load_folder(folder: Path, size: int | None, background: Color, every: int,
                 max_frames: int | None, show: bool, upscale: bool = True) -> Frames:
    files, skipped = _folder_files(folder)
    if skipped:
        warnings.warn(f"{folder}: skipped {len(skipped)} non-image file(s): {_summarize(skipped)}",
                      ReseqWarning, stacklevel=3)
    if not files:
        raise ReseqError(f"{folder} contains no images (png, jpg, webp, bmp, tif, gif)")
    n_images = len(files)
    files = files[::every]
    if max_frames is not None:
        files = files[:max_frames]
    if len(files) < 2 <= n_images and every > 1:
        raise ReseqError(f"keeping every {every}th image (--every) leaves {len(files)} of the "
                         f"{n_images} images in {folder}; need at least 2 frames")
    with _Assembler(size, background, upscale=upscale, expected=len(files)) as out:
        it = _progress(files, desc="loading frames", total=len(files),
                       enabled=show and len(files) > _PROGRESS_MIN, unit="frame")
        for path, label in it:
            out.add(functools.partial(_open_image, path), label)
        out.finish()
    unreadable = [f"{label}{_why(exc)}" for label, exc in out.failed]
    if len(out) == 0:
        raise ReseqError(f"{folder} has no readable images "
                         f"({len(unreadable)} unreadable: {_summarize(unreadable, 3)})")
    if len(out) == 1:
        raise ReseqError(f"{folder} has only one readable image ({out.labels[0]}"
                         + (f"; unreadable: {_summarize(unreadable, 3)}" if unreadable else "")
                         + "); need at least 2 frames")
    if unreadable:
        warnings.warn(f"{folder}: skipped {len(unreadable)} unreadable image(s): "
                      f"{_summarize(unreadable)}", ReseqWarning, stacklevel=3)
    return out.result(str(folder))


def _load_animated(path: Path, im: Image.Image, size: int | None, background: Color,
                   every: int, max_frames: int | None, show: bool,
                   upscale: bool = True) -> Frames:
    """Every frame of an animated image through Pillow (GIF, WebP, multi-page TIFF)."""
    n = getattr(im, "n_frames", 1)
    t = 0.0
    want = range(0, n, every)
    total = len(want) if max_frames is None else min(len(want), max_frames)
    if total < 2 and n >= 2:
        raise ReseqError(f"keeping every {every}th frame (--every) leaves {total} of the {n} "
                         f"frames of {path}; need at least 2 frames")
    bar = _progress(range(total), desc="loading frames", total=total,
                    enabled=show and total > _PROGRESS_MIN, unit="frame")
    bar_it = iter(bar)
    with _Assembler(size, background, upscale=upscale, expected=total) as out:
        try:
            for i, frame in enumerate(ImageSequence.Iterator(im)):
                frame.load()  # composes the canvas (disposal, blending) and fills frame.info
                duration = float(frame.info.get("duration", 0) or 0) / 1000.0
                if i % every == 0:
                    # convert()/copy() make an independent copy of the composed canvas.
                    rgba = frame.convert("RGBA") if frame.mode != "RGB" else frame.copy()
                    out.add(rgba, f"frame {i} @ {t:.3f}s")
                    next(bar_it, None)
                    if max_frames is not None and len(out) >= max_frames:
                        break
                t += duration
        except (OSError, ValueError, EOFError, *_BOMBS) as exc:
            if len(out) < 2:
                raise ReseqError(f"cannot decode {path}: {_first_line(exc)}") from None
            warnings.warn(f"{path}: stopped after {len(out)} frames: {_first_line(exc)}",
                          ReseqWarning, stacklevel=3)
        finally:
            _close(bar)
        return out.result(str(path))


def _close(bar) -> None:
    close = getattr(bar, "close", None)
    if close is not None:
        close()


def _load_video(path: Path, size: int | None, background: Color, every: int,
                start: float | None, end: float | None, max_frames: int | None,
                show: bool, upscale: bool = True) -> Frames:
    """Frames of a video through PyAV, numbered in the stream and time-stamped."""
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise ReseqError(f"cannot read {path} as a video: {_av_message(exc)} "
                         "(truncated, corrupt or not a video?)") from None
    with container, _Assembler(size, background, upscale=upscale) as out:
        if not container.streams.video:
            raise ReseqError(f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else None
        t0 = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
        sought = False
        if start and start > 0 and tb:
            try:
                container.seek(int((start + t0) / tb), stream=stream, backward=True,
                               any_frame=False)
                sought = True
            except av.error.FFmpegError:  # unseekable: decode from the start instead
                container.seek(0)
        declared = stream.frames or 0
        total = declared or (round(float(stream.duration * tb) * fps)
                             if stream.duration and tb and fps else None)
        if total:
            lo = round((start or 0) * fps) if fps else 0
            hi = min(total, round(end * fps)) if end is not None and fps else total
            total = max(0, math.ceil((hi - lo) / every))
            if max_frames is not None:
                total = min(total, max_frames)
            out.expected = total
        bar = _progress(range(total or 0), desc="decoding video", total=total,
                        enabled=show and (total is None or total > _PROGRESS_MIN), unit="frame")
        bar_it = iter(bar)
        count = -1  # index of the decoded frame in the stream (when decoding from the start)
        kept_seen = 0  # frames at/after start, for `every`
        error: str | None = None
        try:
            for frame in container.decode(stream):
                count += 1
                if frame.pts is not None and tb:
                    t = float(frame.pts * tb) - t0
                elif fps:
                    t = count / fps
                else:
                    t = float(count)
                number = round(t * fps) if (sought and fps) else count
                if start is not None and t < start - 1e-6:
                    continue
                if end is not None and t >= end - 1e-6:
                    break
                if kept_seen % every == 0:
                    out.add(_SizedLoader(_video_frame_image, frame, size=size, upscale=upscale),
                            f"frame {number} @ {t:.3f}s")
                    next(bar_it, None)
                    if max_frames is not None and len(out) >= max_frames:
                        break
                kept_seen += 1
        except av.error.FFmpegError as exc:
            error = _av_message(exc)
        finally:
            _close(bar)
        out.finish()
        if error is not None:
            if len(out) < 2:
                raise ReseqError(f"cannot decode video {path}: {error}")
            warnings.warn(f"{path}: video is damaged after {out.last_label}; kept the "
                          f"{len(out)} frames decoded before the error ({error})", ReseqWarning,
                          stacklevel=3)
        elif (declared and not sought and end is None and max_frames is None
              and count + 1 < declared - 1 and len(out) >= 2):
            warnings.warn(f"{path}: the stream declares {declared} frames but only {count + 1} "
                          f"decoded (truncated file?); kept {len(out)}", ReseqWarning,
                          stacklevel=3)
        if len(out) < 2:
            if every > 1 and kept_seen >= 2:
                raise ReseqError(f"keeping every {every}th frame (--every) leaves {len(out)} of "
                                 f"the {kept_seen} frames of {path}; need at least 2 frames")
            what = "frames in the requested range" if (start or end) else "decodable frames"
            raise ReseqError(f"{path}: need at least 2 frames, found {len(out)} {what}")
        return out.result(str(path))


@dataclass(frozen=True)
class VideoIndex:
    """Where the frames of a video are, without decoding them (:func:`video_index`).

    ``pts[i]`` is the presentation timestamp of frame ``i`` (display order, the numbering of
    :func:`load_frames`' labels) in units of ``time_base``; ``start`` is the stream's start time
    in seconds (labels count time from it).
    """

    pts: tuple[int, ...]
    time_base: Fraction
    start: float
    first: int = 0  #: the number of the frame at ``pts[0]`` (a part of a video's index)

    def __len__(self) -> int:
        return len(self.pts)

    def part(self, lo: int, hi: int) -> VideoIndex:
        """The index of frames ``lo <= i < hi`` only (what a task decoding them needs)."""
        return VideoIndex(self.pts[lo - self.first:hi - self.first], self.time_base, self.start,
                          lo)


def video_index(path: str | os.PathLike) -> VideoIndex | None:
    """The frame timestamps of a video's first video stream, from one demux pass (no decoding:
    about the speed of reading the file). None when frames cannot be told apart by timestamp
    (packets without timestamps, repeated timestamps, a read error): such a video can only be
    decoded from its start."""
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise ReseqError(f"cannot read {path} as a video: {_av_message(exc)} "
                         "(truncated, corrupt or not a video?)") from None
    with container:
        if not container.streams.video:
            raise ReseqError(f"{path} has no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base
        pts: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the end-of-stream (flush) packet
                    continue
                if packet.pts is None or tb is None:
                    return None
                if not getattr(packet, "is_discard", False):
                    pts.append(int(packet.pts))
        except av.error.FFmpegError:
            return None
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
    pts.sort()
    if len(set(pts)) != len(pts):
        return None
    return VideoIndex(tuple(pts), Fraction(tb), start)


def decode_video_frames(path: str | os.PathLike, index: VideoIndex, wanted: Sequence[int],
                        size: int | None = 256, *, target: tuple[int, int] | None = None,
                        upscale: bool = True, background: Color | str = (255, 255, 255),
                        workers: int | None = 1) -> tuple[Frames, list[int]]:
    """Frames number ``wanted`` (increasing indices into ``index``) of a video, exactly as
    :func:`load_frames` decodes them: same pixels, same labels.

    The decoder seeks to the key frame at or before the first wanted frame (or starts from the
    beginning when the container's seek lands after it) and decodes on to the last; frames are
    recognised by their timestamps, so ranges that tile the video give every frame once. The
    working size is ``target`` (``(width, height)``, as fixed by the video's first frame: the
    pixels then match a whole-video load) or, without one, set by the first wanted frame from
    ``size`` like :func:`load_frames`. Returns the frames and the wanted indices that did not
    decode (a damaged stretch).
    """
    import av

    wanted = [int(i) for i in wanted]
    if not wanted:
        raise ValueError("no frames wanted")
    want = {index.pts[i - index.first]: i for i in wanted}
    first, last = index.pts[wanted[0] - index.first], index.pts[wanted[-1] - index.first]
    bg = _parse_background(background)
    got: dict[int, tuple[np.ndarray, str, tuple[int, int]]] = {}

    def run(seek: bool) -> bool:
        """Decode into ``got``; False when the seek landed after the first wanted frame."""
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = stream.time_base
            if seek:
                container.seek(first, stream=stream, backward=True, any_frame=False)
            with _Assembler(size, bg, workers=workers, upscale=upscale) as out:
                out.target = target
                numbers: dict[str, int] = {}  # label -> frame number, of frames sent
                try:
                    for k, frame in enumerate(container.decode(stream)):
                        if frame.pts is None:
                            raise ReseqError(f"{path}: a frame without a timestamp")
                        if k == 0 and seek and frame.pts > first:
                            return False
                        if frame.pts > last:
                            break
                        i = want.get(frame.pts)
                        if i is None or i in got:
                            continue
                        label = f"frame {i} @ {float(frame.pts * tb) - index.start:.3f}s"
                        if label in numbers:
                            continue
                        numbers[label] = i
                        out.add(_SizedLoader(_video_frame_image, frame, size=size,
                                             upscale=upscale), label)
                except av.error.FFmpegError:
                    pass  # a damaged stretch: what decoded is kept, the rest is reported
                out.finish()
                for a, label, n in zip(out.arrays, out.labels, out.native):
                    got[numbers[label]] = (a, label, n)
        return True

    try:
        if not run(seek=wanted[0] > 0):
            run(seek=False)
    except av.error.FFmpegError as exc:
        raise ReseqError(f"cannot read {path} as a video: {_av_message(exc)}") from None
    arrays = [got[i][0] for i in wanted if i in got]
    labels = [got[i][1] for i in wanted if i in got]
    missing = [i for i in wanted if i not in got]
    if not arrays:
        w, h = target if target is not None else (0, 0)
        return Frames(np.zeros((0, h, w, 3), np.uint8), [], str(path)), missing
    return Frames(np.stack(arrays), labels, str(path), [got[i][2] for i in wanted if i in got]
                  ), missing


def decode_image_files(files: Sequence[tuple[str | os.PathLike, str]], size: int | None = 256,
                       *, target: tuple[int, int] | None = None, upscale: bool = True,
                       background: Color | str = (255, 255, 255), workers: int | None = 1
                       ) -> tuple[Frames, list[tuple[str, BaseException]]]:
    """Image files ``(path, label)`` as frames, exactly as :func:`load_frames` reads a folder of
    them, at working size ``target`` (or set by the first readable file from ``size``).
    Returns the frames and the ``(label, error)`` of files that would not decode."""
    bg = _parse_background(background)
    with _Assembler(size, bg, workers=workers, upscale=upscale) as out:
        out.target = target
        for path, label in files:
            out.add(functools.partial(_open_image, Path(path)), label)
        out.finish()
    if not out.arrays:
        w, h = target if target is not None else (0, 0)
        return Frames(np.zeros((0, h, w, 3), np.uint8), [], ""), out.failed
    return Frames(np.stack(out.arrays), out.labels, "", out.native), out.failed


def _video_frame_image(frame, target: tuple[int, int] | None = None, size: int | None = None,
                       upscale: bool = True):
    """A decoded PyAV frame as a Pillow image, keeping alpha when the stream has it.

    With a ``target`` (working size) of the frame's own aspect ratio and no larger, the colour
    conversion and the downscale happen in one FFmpeg pass (area averaging; 3x faster than
    converting at full size and resizing with Pillow) and ``(image, native size)`` is returned.
    The first frame (``target`` None) derives the target from ``size`` the same way, so every
    frame of a video is resampled alike.
    """
    if target is None and size is not None:
        target = _working_size((frame.width, frame.height), size, upscale)
    fmt = frame.format
    rotation = round(getattr(frame, "rotation", 0) or 0) % 360
    alpha = fmt.has_palette or any(getattr(c, "is_alpha", False) for c in fmt.components)
    if (target is not None and not alpha and rotation == 0
            and target[0] * frame.height == target[1] * frame.width and target[0] <= frame.width):
        small = frame.reformat(width=target[0], height=target[1], format="rgb24",
                               interpolation="AREA")
        return Image.fromarray(small.to_ndarray(), "RGB"), (frame.width, frame.height)
    im = _video_frame_full(frame, alpha, rotation)
    return im, im.size


def _video_frame_full(frame, alpha: bool, rotation: int) -> Image.Image:
    if alpha:
        im = Image.fromarray(frame.to_ndarray(format="rgba"), "RGBA")
    else:
        im = Image.fromarray(frame.to_ndarray(format="rgb24"), "RGB")
    # Display rotation (phone videos): the display matrix turns the frame counter-clockwise.
    turn = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_270}.get(rotation)
    return im.transpose(turn) if turn is not None else im


def _av_message(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(msg).split())[:200]


def _check_args(every: int, start: float | None, end: float | None,
                max_frames: int | None) -> None:
    if not isinstance(every, (int, np.integer)) or every < 1:
        raise ReseqError(f"every must be a positive integer, got {every!r}")
    for name, value in (("start", start), ("end", end)):
        if value is not None and not (isinstance(value, (int, float, np.number))
                                      and math.isfinite(value)):
            raise ReseqError(f"{name} must be a finite number of seconds, got {value!r}")
    if start is not None and start < 0:
        raise ReseqError(f"start must be >= 0 seconds, got {start}")
    if end is not None and start is not None and end <= start:
        raise ReseqError(f"end ({end}) must be after start ({start})")
    if max_frames is not None and max_frames < 2:
        raise ReseqError(f"max_frames must be at least 2, got {max_frames}")


def load_frames(source: str | os.PathLike, size: int | str | None = 256, every: int = 1,
                start: float | None = None, end: float | None = None,
                max_frames: int | None = None, background: Color | str = (255, 255, 255),
                progress: bool = True, upscale: bool = True) -> Frames:
    """Load frames from a folder, a video, an animated image or ``sample:NAME``.

    ``size`` is the working long edge in pixels (None or ``"native"``: the first frame's size);
    with ``upscale=False`` it is a maximum (frames smaller than it keep their native size; the
    CLI's ``--size`` works so unless ``--upscale`` is given). ``every`` keeps every k-th frame;
    ``start``/``end`` (seconds, videos only) select the time range ``start <= t < end``;
    ``max_frames`` caps the count; ``background`` is the colour transparent pixels and
    letterbox bars become. See the module docstring for the policies.

    The frames must fit in memory: the estimate (2 x N x H x W x 3 bytes) is checked against
    :func:`reseq._util.memory_limit` (``RESEQ_MAX_MEMORY``) before the first frame is resized.
    Images over Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) are
    unreadable: skipped with a warning in a folder, an error alone.
    """
    with warnings.catch_warnings():
        # a decompression bomb is an unreadable file, not a warning (threads see this filter)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return _load_frames(source, size, every, start, end, max_frames, background, progress,
                            upscale)


def _load_frames(source, size, every, start, end, max_frames, background, progress,
                 upscale) -> Frames:
    size = parse_size(size)
    bg = _parse_background(background)
    _check_args(every, start, end, max_frames)
    try:
        text = os.fspath(source)
    except TypeError:
        raise ReseqError(f"source must be a path or 'sample:NAME', got {source!r}") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.startswith("sample:"):
        from .assets import sample_source

        path = sample_source(text)
        frames = _load_frames(path, size, every, start, end, max_frames, bg, progress,
                              upscale)
        frames.source = text
        return frames
    path = Path(text).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ReseqError(f"{path} does not exist") from None
    except PermissionError:
        raise ReseqError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise ReseqError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        if start is not None or end is not None:
            raise ReseqError("start/end (seconds) apply to videos; for a folder use --every "
                             "and --max-frames, or pick frames by name")
        return _load_folder(path, size, bg, every, max_frames, progress, upscale)
    if not os.access(path, os.R_OK):
        raise ReseqError(f"cannot read {path}: permission denied")
    if st.st_size == 0:
        raise ReseqError(f"{path} is empty (0 bytes)")
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS or ext in _ANIMATED_EXTENSIONS:
        try:
            im = Image.open(path)
        except PermissionError:
            raise ReseqError(f"cannot read {path}: permission denied") from None
        except _BOMBS as exc:
            raise ReseqError(f"cannot read {path}: too many pixels, a decompression bomb? "
                             f"({_first_line(exc)})") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ReseqError(f"cannot read {path} as an image: {_first_line(exc)}") from None
        with im:
            try:
                n_frames = getattr(im, "n_frames", 1)
                if n_frames < 2:
                    im.load()  # a damaged still image should say so, not "single image"
            except (OSError, ValueError, SyntaxError, EOFError, *_BOMBS) as exc:
                raise ReseqError(f"cannot read {path} as an image: {_first_line(exc)}") from None
            if n_frames < 2:
                raise ReseqError(f"{path} is a single image; need at least 2 frames (give a "
                                 "folder, a video or an animated GIF/APNG/WebP)")
            if start is not None or end is not None:
                raise ReseqError("start/end (seconds) apply to videos; for an animated image "
                                 "use --every and --max-frames")
            if im.format == "PNG":
                # APNG: FFmpeg's decoder blends semi-transparent pixels correctly (Pillow's
                # APNG_BLEND_OP_OVER squares their alpha); Pillow remains the fallback.
                try:
                    return _load_video(path, size, bg, every, None, None, max_frames, progress,
                                       upscale)
                except ReseqError as exc:
                    if "memory" in str(exc) or "--every" in str(exc):
                        raise
            return _load_animated(path, im, size, bg, every, max_frames, progress, upscale)
    if ext in VIDEO_EXTENSIONS:
        return _load_video(path, size, bg, every, start, end, max_frames, progress, upscale)
    # Unknown extension: let FFmpeg try, then Pillow (an animated image with an odd name).
    try:
        return _load_video(path, size, bg, every, start, end, max_frames, progress, upscale)
    except ReseqError as video_error:
        if "as a video" not in str(video_error):
            raise  # FFmpeg opened it: its error is the informative one
        try:
            im = Image.open(path)
        except Exception:
            raise ReseqError(f"cannot read {path}: not a video, animated image or image format "
                             "reseq knows") from None
        with im:
            if getattr(im, "n_frames", 1) < 2:
                raise ReseqError(f"{path} is a single image; need at least 2 frames") from None
            return _load_animated(path, im, size, bg, every, max_frames, progress, upscale)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
