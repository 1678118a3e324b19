"""Outputs: write a sequence of frames as a video, a GIF or PNG files, plus pictures about it.

Every command ends here. :func:`write_sequence` takes the frames of a new sequence (an
``(M, H, W, 3)`` uint8 array, already in output order), their labels, and the distance from each
frame to the next, and writes

* an **MP4** (H.264 through PyAV/libx264, yuv420p, even dimensions, constant frame rate),
* an animated **GIF** (Pillow, an adaptive palette per frame, per-frame duration, looping), or
* a **PNG sequence** ``0000.png, 0001.png, ...`` when the path ends in ``/`` or is a folder,

and optionally an **index**: a JSON list with one object per output frame,
``{"index", "label", "distance_to_next", "synthetic", ...}`` (and the same as CSV).

:func:`contact_sheet` draws uniformly sampled frames of a sequence in a grid with their labels
(the paper's Figures 3, 5 and 6); :func:`outlier_histogram` plots the outlier scores with the
fitted generalized-gamma density and the threshold (paper section 4.3); :func:`mst_plot` lays
out the minimum spanning tree in 2-D with thumbnails, for choosing key-frames.

Nothing is ever overwritten without ``force``; every file is written to a temporary name and
renamed into place, and all targets are checked (:func:`check_outputs`, through
:func:`reseq._util.check_output_paths`) before the first byte is written. The PNGs of a sequence
carry a ``Software: reseq`` text chunk: a later ``--force`` run replaces those, and refuses a
folder holding anything else. Pictures (contact sheet, plots) are written in the format their
extension names: .png, .jpg/.jpeg, .webp or .tif/.tiff; any other extension is refused.

>>> import numpy as np, tempfile, pathlib
>>> frames = np.zeros((3, 8, 8, 3), np.uint8)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "seq"
>>> [p.name for p in write_sequence(str(out) + "/", frames, ["a", "b", "c"], [1.0, 2.0, None])]
['seq']
>>> sorted(p.name for p in out.iterdir())
['0000.png', '0001.png', '0002.png']
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ._util import Output, atomic_path, check_output_paths, check_writable, progress, public_mode
from ._util import os_error_message as _os_message
from .errors import ReseqError

__all__ = [
    "PICTURE_FORMATS",
    "check_outputs",
    "check_picture_path",
    "contact_sheet",
    "index_records",
    "layout_geometry",
    "layout_picture",
    "mst_plot",
    "outlier_histogram",
    "output_kind",
    "write_sequence",
]

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
VIDEO_SUFFIXES = tuple(_CONTAINERS)
_PNG_NAME = re.compile(r"^\d+\.png$")
_SOFTWARE = "reseq"  # the PNG text chunk that marks the frames of a PNG-sequence output
#: Picture outputs (contact sheets, plots): extension -> the format written.
PICTURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp",
                   ".tif": "tiff", ".tiff": "tiff"}


# --------------------------------------------------------------------------------------------
# helpers


def output_kind(path: str | os.PathLike) -> str:
    """``"mp4"``, ``"gif"`` or ``"png"`` (a folder) for an output path; ReseqError otherwise.

    >>> output_kind("a/out.mp4"), output_kind("loop.GIF"), output_kind("frames/")
    ('mp4', 'gif', 'png')
    """
    text = os.fspath(path)
    if not text.strip():
        raise ReseqError("the output path is empty; give out.mp4, out.gif or a folder/")
    if text.endswith(("/", os.sep)) or Path(text).is_dir():
        return "png"
    suffix = Path(text).suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "mp4"
    if suffix == ".gif":
        return "gif"
    raise ReseqError(
        f"cannot tell what to write for {text!r}: use a .mp4 or .gif file, or a folder ending in '/'"
    )


def check_picture_path(path: str | os.PathLike, option: str = "picture") -> str:
    """The format a picture output is written in, from its extension; ReseqError for any
    extension reseq cannot honour.

    >>> check_picture_path("sheet.JPG"), check_picture_path("mst.png")
    ('jpeg', 'png')
    """
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix not in PICTURE_FORMATS:
        raise ReseqError(f"{option} {os.fspath(path)}: cannot write a picture as "
                         f"{suffix or 'a file without extension'}; use .png, .jpg, .webp or .tif")
    return PICTURE_FORMATS[suffix]


def _is_reseq_png(path: Path) -> bool:
    """A numbered PNG that reseq wrote (its ``Software`` text chunk says so)."""
    if not (_PNG_NAME.match(path.name) and path.is_file()) or path.is_symlink():
        return False
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get("Software") == _SOFTWARE
    except Exception:
        return False


def _bar(images: np.ndarray, desc: str):
    """The frames with a progress bar; frames kept on disk are read without piling up in memory
    (:func:`reseq._util.iter_frames`)."""
    from ._util import iter_frames

    return progress(iter_frames(images), desc, total=len(images), enabled=len(images) >= 100,
                    unit="frame")


def _check_images(images: np.ndarray) -> np.ndarray:
    from ._util import FrameView

    if not isinstance(images, FrameView):  # a view reads its frames when they are written
        images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ReseqError(f"expected frames of shape (M, H, W, 3), got {images.shape}")
    if len(images) == 0:
        raise ReseqError("no frames to write")
    if images.dtype != np.uint8:
        raise ReseqError(f"expected uint8 frames, got {images.dtype}")
    return images


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def index_records(labels: Sequence[str], distances_to_next: Sequence[float | None],
                  extra: Sequence[dict] | None = None) -> list[dict]:
    """One dict per output frame: ``index``, ``label``, ``distance_to_next``, ``synthetic``,
    then the keys of ``extra[i]`` (which may override ``synthetic``).

    >>> index_records(["a.png", "b.png"], [0.25, None], [{"source_index": 3}, {"source_index": 0}])
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'index': 0, 'label': 'a.png', 'distance_to_next': 0.25, 'synthetic': False, 'source_index': 3},
     {'index': 1, 'label': 'b.png', 'distance_to_next': None, 'synthetic': False, 'source_index': 0}]
    """
    m = len(labels)
    if len(distances_to_next) != m:
        raise ReseqError(f"{m} labels but {len(distances_to_next)} distances")
    if extra is not None and len(extra) != m:
        raise ReseqError(f"{m} labels but {len(extra)} extra records")
    records = []
    for i in range(m):
        d = distances_to_next[i]
        rec: dict[str, Any] = {
            "index": i,
            "label": str(labels[i]),
            "distance_to_next": None if d is None else _jsonable(float(d)),
            "synthetic": False,
        }
        if extra is not None:
            rec.update({str(k): _jsonable(v) for k, v in extra[i].items()})
        records.append(rec)
    return records


def _write_json(path: Path, records: list[dict], force: bool) -> None:
    with atomic_path(path, force) as tmp:
        tmp.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")


def _write_csv(path: Path, records: list[dict], force: bool) -> None:
    fields: list[str] = []
    for rec in records:
        fields.extend(k for k in rec if k not in fields)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        writer.writerow({k: ("" if rec.get(k) is None else rec.get(k)) for k in fields})
    with atomic_path(path, force) as tmp:  # file names that are not UTF-8 keep their bytes
        tmp.write_text(buf.getvalue(), encoding="utf-8", errors="surrogateescape")


def _fps_fraction(fps: float) -> Fraction:
    if not (fps > 0 and math.isfinite(fps)):
        raise ReseqError(f"fps must be a positive number, got {fps}")
    return Fraction(fps).limit_denominator(1001)


# --------------------------------------------------------------------------------------------
# writers


@contextlib.contextmanager
def _av_errors(path: Path):
    """An FFmpeg failure while writing (full disk, ...) as one ReseqError line."""
    import av

    try:
        yield
    except av.error.FFmpegError as exc:
        msg = " ".join(str(getattr(exc, "strerror", None) or exc).split())[:200]
        raise ReseqError(f"cannot write {path}: {msg}") from None


def _write_mp4(path: Path, images: np.ndarray, fps: float, force: bool, crf: int) -> None:
    import av

    h, w = images.shape[1:3]
    pad_h, pad_w = h % 2, w % 2  # yuv420p needs even sizes: repeat the last row/column
    with atomic_path(path, force) as tmp, _av_errors(path):
        with av.open(str(tmp), mode="w", format=_CONTAINERS[path.suffix.lower()]) as container:
            stream = container.add_stream("libx264", rate=_fps_fraction(fps))
            stream.width = w + pad_w
            stream.height = h + pad_h
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}  # 3.6x faster than medium here
            for img in _bar(images, "writing MP4"):
                if pad_h or pad_w:
                    img = np.pad(img, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def _to_palette(img: np.ndarray):
    """A palette ("P") image: exact when the frame has at most 256 colours (pixel art, flat
    cartoons), otherwise an adaptive 256-colour palette (Pillow's fast octree, about 100x
    faster than median cut for a mean error of 4.5 instead of 3.9 grey levels on video)."""
    from PIL import Image

    h, w = img.shape[:2]
    packed = (img[..., 0].astype(np.uint32) << 16) | (img[..., 1].astype(np.uint32) << 8) | img[..., 2]
    colours, inverse = np.unique(packed.ravel(), return_inverse=True)
    if len(colours) <= 256:
        im = Image.fromarray(inverse.reshape(h, w).astype(np.uint8), "P")
        rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1)
        im.putpalette(rgb.astype(np.uint8).ravel().tolist())
        return im
    return Image.fromarray(img, "RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)


def _write_gif(path: Path, images: np.ndarray, fps: float, force: bool, loop: bool) -> None:
    duration = round(1000.0 / fps)
    frames = [_to_palette(img) for img in _bar(images, "writing GIF")]
    kwargs: dict[str, Any] = {"duration": duration, "disposal": 1}
    if loop:
        kwargs["loop"] = 0  # forever; without the key the GIF plays once
    with atomic_path(path, force) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       optimize=False, **kwargs)


def _write_pngs(path: Path, images: np.ndarray, force: bool) -> None:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", _SOFTWARE)
    width = max(4, len(str(len(images) - 1)))
    tmp_dir = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        public_mode(tmp_dir, folder=True)
        for i, img in enumerate(_bar(images, "writing PNGs")):
            Image.fromarray(img, "RGB").save(tmp_dir / f"{i:0{width}d}.png", pnginfo=info)
        if not path.exists():
            os.rename(tmp_dir, path)
        elif not any(path.iterdir()):
            os.rmdir(path)
            os.rename(tmp_dir, path)
        else:  # force: replace the PNGs reseq wrote there before (checked: nothing else is there)
            for old in path.iterdir():
                if _is_reseq_png(old):
                    old.unlink()
            for new in sorted(tmp_dir.iterdir()):
                os.replace(new, path / new.name)
    except OSError as exc:
        raise ReseqError(f"cannot write {path}/: {_os_message(exc)}") from None
    finally:
        if tmp_dir is not None and tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)


def _targets(path: str | os.PathLike, index: str | os.PathLike | None,
             index_csv: bool | str | os.PathLike) -> list[tuple[str, Path]]:
    kind = output_kind(path)
    out = Path(path)
    targets: list[tuple[str, Path]] = [(kind, out)]
    if index is not None:
        ipath = Path(index)
        targets.append(("csv" if ipath.suffix.lower() == ".csv" else "json", ipath))
    if index_csv:
        if isinstance(index_csv, (str, os.PathLike)):
            cpath = Path(index_csv)
        elif index is not None:
            cpath = Path(index).with_suffix(".csv")
        else:
            cpath = out.parent / (out.name + ".csv") if kind == "png" else out.with_suffix(".csv")
        if cpath not in [t[1] for t in targets]:
            targets.append(("csv", cpath))
    return targets


def check_outputs(
    path: str | os.PathLike | None = None,
    index: str | os.PathLike | None = None,
    index_csv: bool | str | os.PathLike = False,
    others: Sequence[str | os.PathLike | Output | None] = (),
    force: bool = False,
    fps: float | None = None,
    sources: Sequence[str | os.PathLike | None] = (),
) -> list[Path]:
    """Check, before any work, that every output can be written: a known kind of sequence
    output, an fps the format can show, and everything :func:`reseq._util.check_output_paths`
    checks (no empty path, no source, no foreign files in a PNG folder, nothing existing
    without ``force``, no two outputs on one path). ``others`` are further single-file outputs
    (contact sheet, plots: an :class:`~reseq._util.Output` names its option; pictures must
    have an extension of :data:`PICTURE_FORMATS`). Returns all paths.

    >>> check_outputs("out.mp4", index="out.json", index_csv=True, others=["sheet.png"])
    [PosixPath('out.mp4'), PosixPath('out.json'), PosixPath('out.csv'), PosixPath('sheet.png')]
    """
    if path is not None and not os.fspath(path).strip():
        raise ReseqError("-o: the output path is empty; give out.mp4, out.gif or a folder/")
    if index is not None and not os.fspath(index).strip():
        raise ReseqError("--index: the output path is empty; give a file name")
    targets = _targets(path, index, index_csv) if path is not None else []
    if fps is not None:
        _fps_fraction(fps)
        if targets and targets[0][0] == "gif" and round(1000.0 / fps) < 20:
            raise ReseqError(f"GIF frames last at least 20 ms (50 fps); got --fps {fps:g}; "
                             "use a lower fps or an .mp4")
    outs: list[Output] = []
    for i, (kind, p) in enumerate(targets):
        option = "-o" if i == 0 else ("--index" if index is not None and i == 1 else "--index-csv")
        outs.append(Output(p, option, folder=kind == "png", own=_is_reseq_png))
    for other in others:
        if other is None:
            continue
        out = other if isinstance(other, Output) else Output(other, "output")
        if out.path is None:
            continue
        if os.fspath(out.path).strip() and not out.folder:
            check_picture_path(out.path, out.option)
        outs.append(out)
    if outs and outs[0].folder:  # a file among the numbered frames would collide with one
        seq = os.path.realpath(outs[0].path)
        for out in outs[1:]:
            name = Path(os.fspath(out.path)).name
            if (os.path.dirname(os.path.realpath(out.path)) == seq
                    and re.match(r"^\d+\.png$", name, re.IGNORECASE)):
                raise ReseqError(f"{out.option} {os.fspath(out.path)} would collide with the "
                                 f"numbered frames written into {os.fspath(outs[0].path)}")
    checked = check_output_paths(outs, sources=sources, force=force)
    if index is not None and Path(index).suffix.lower() in (*PICTURE_FORMATS, *VIDEO_SUFFIXES,
                                                            ".gif"):
        raise ReseqError(f"--index {os.fspath(index)}: the index is a JSON (or .csv) file, not "
                         "a picture or video; use .json or .csv")
    return [p for p in checked if p is not None]


def write_sequence(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: Sequence[str],
    distances_to_next: Sequence[float | None],
    fps: float = 12.0,
    force: bool = False,
    index: str | os.PathLike | None = None,
    index_csv: bool | str | os.PathLike = False,
    extra: Sequence[dict] | None = None,
    loop: bool = True,
    crf: int = 18,
    check: bool = True,
) -> list[Path]:
    """Write frames (already in output order) to ``path`` and return the files written.

    Parameters
    ----------
    path : ``*.mp4`` (also .m4v/.mov/.mkv; H.264 yuv420p), ``*.gif``, or a folder (a path
        ending in ``/`` or an existing directory) for ``0000.png, 0001.png, ...``.
    images : (M, H, W, 3) uint8.
    labels, distances_to_next : one per frame; ``distances_to_next[i]`` is the distance from
        frame i to frame i + 1 (``None`` for the last frame of a path).
    fps : frames per second (GIF: per-frame duration ``round(1000 / fps)`` ms, stored by the
        format in 10 ms units).
    index : write the JSON index here (a path ending in ``.csv`` writes CSV instead).
    index_csv : ``True`` also writes the index as CSV beside the JSON index (or beside the
        output when ``index`` is None); a path writes it there.
    extra : per-frame dicts merged into the index records (e.g. ``source_index``,
        ``synthetic``).
    loop : GIF only: loop forever (default) or play once.
    crf : H.264 quality (lower is better; 18 is visually lossless for most content); x264
        preset "veryfast" (1000 frames at 256 x 144 in about 1 s here).
    check : run :func:`check_outputs` first (the CLI passes False: it has checked every
        output of the job, the contact sheet and plots included, before the work started).

    Identical consecutive frames are merged by the GIF writer (their durations add up), so a
    GIF can hold fewer frames than the index lists.
    """
    images = _check_images(images)
    m = len(images)
    if len(labels) != m:
        raise ReseqError(f"{m} frames but {len(labels)} labels")
    records = index_records(labels, distances_to_next, extra)
    targets = _targets(path, index, index_csv)
    if check:
        check_outputs(path, index, index_csv, force=force, fps=fps)

    written: list[Path] = []
    for k, p in targets:
        if k == "mp4":
            _write_mp4(p, images, fps, force, crf)
        elif k == "gif":
            _write_gif(p, images, fps, force, loop)
        elif k == "png":
            _write_pngs(p, images, force)
        elif k == "json":
            _write_json(p, records, force)
        else:
            _write_csv(p, records, force)
        written.append(p)
    return written


# --------------------------------------------------------------------------------------------
# pictures


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit_text(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[1:] if "/" in text else text[:-1]
    return text + "…"


def _sample_indices(m: int, n: int) -> np.ndarray:
    k = max(1, min(n, m))
    return np.unique(np.round(np.linspace(0, m - 1, k)).astype(int))


def _thumb_scale(h: int, w: int, lo: int = 96, hi: int = 256) -> float:
    big = max(h, w)
    if big > hi:
        return hi / big
    if big < lo:
        return float(math.ceil(lo / big))
    return 1.0


def contact_sheet(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: Sequence[str],
    n: int = 16,
    cols: int | None = None,
    title: str | None = None,
    force: bool = False,
) -> Path:
    """A PNG grid of ``n`` uniformly sampled frames of a sequence, each with ``position: label``
    underneath (the first and last frames always included). Returns the path written.
    """
    from PIL import Image, ImageDraw

    fmt = check_picture_path(path, "contact sheet")
    if np.ndim(images) == 4 and len(images) == 0 and not len(labels):  # nothing to show: say so
        out = check_writable(path, force)
        font = _font(14)
        sheet = Image.new("RGB", (360, 60), "white")
        draw = ImageDraw.Draw(sheet)
        draw.text((6, 6), _fit_text(draw, title or "", font, 348), fill="black", font=font)
        draw.text((6, 30), "(no frames)", fill="black", font=font)
        with atomic_path(out, force) as tmp:
            sheet.save(tmp, format=fmt.upper())
        return out
    images = _check_images(images)
    if len(labels) != len(images):
        raise ReseqError(f"{len(images)} frames but {len(labels)} labels")
    if n < 1:
        raise ReseqError("a contact sheet needs at least one frame (n >= 1)")
    out = check_writable(path, force)
    picks = _sample_indices(len(images), n)
    k = len(picks)
    cols = cols or math.ceil(math.sqrt(k))
    cols = max(1, min(cols, k))
    rows = math.ceil(k / cols)

    h, w = images.shape[1:3]
    s = _thumb_scale(h, w)
    tw, th = max(1, round(w * s)), max(1, round(h * s))
    font_size = max(10, min(14, tw // 12))
    font = _font(font_size)
    pad, text_h = 6, font_size + 6
    title_h = (font_size + 12) if title else 0
    sheet = Image.new("RGB", (cols * (tw + pad) + pad, title_h + rows * (th + text_h + pad) + pad),
                      "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, pad), _fit_text(draw, title, _font(font_size + 2), sheet.width - 2 * pad),
                  fill="black", font=_font(font_size + 2))
    resample = Image.Resampling.NEAREST if s >= 1 else Image.Resampling.LANCZOS
    for slot, i in enumerate(picks):
        r, c = divmod(slot, cols)
        x = pad + c * (tw + pad)
        y = title_h + pad + r * (th + text_h + pad)
        thumb = Image.fromarray(images[i], "RGB")
        if (tw, th) != (w, h):
            thumb = thumb.resize((tw, th), resample)
        sheet.paste(thumb, (x, y))
        draw.rectangle((x - 1, y - 1, x + tw, y + th), outline=(200, 200, 200))
        text = _fit_text(draw, f"{i}: {labels[i]}", font, tw)
        draw.text((x, y + th + 2), text, fill="black", font=font)
    with atomic_path(out, force) as tmp:
        sheet.save(tmp, format=fmt.upper())
    return out


def outlier_histogram(
    path: str | os.PathLike,
    scores: np.ndarray,
    params: Sequence[float],
    threshold: float,
    mask: np.ndarray,
    force: bool = False,
    title: str | None = None,
) -> Path:
    """Histogram of the outlier scores X_i (inliers and outliers coloured apart) with the
    fitted generalized-gamma density ``scipy.stats.gengamma(*params)`` and the threshold T.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    scores = np.asarray(scores, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if scores.ndim != 1 or scores.shape != mask.shape or len(scores) == 0:
        raise ReseqError("scores and mask must be 1-D arrays of the same, non-zero length")
    check_picture_path(path)
    out = check_writable(path, force)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    try:
        bins = np.histogram_bin_edges(scores, bins="auto")
        if len(bins) > 61:
            bins = np.linspace(scores.min(), scores.max(), 61)
        ax.hist([scores[~mask], scores[mask]], bins=bins, stacked=True, density=True,
                color=["#4c72b0", "#dd5555"],
                label=[f"frames ({(~mask).sum()})", f"outliers ({mask.sum()})"])
        lo = min(scores.min(), float(threshold))
        hi = max(scores.max(), float(threshold))
        span = hi - lo or 1.0
        xs = np.linspace(lo - 0.05 * span, hi + 0.05 * span, 400)
        try:
            pdf = stats.gengamma(*params).pdf(xs)
            ax.plot(xs, pdf, color="black", lw=1.5, label="generalized gamma fit")
        except (ValueError, TypeError):  # pragma: no cover - params from a failed fit
            pass
        ax.axvline(float(threshold), color="#dd5555", ls="--", lw=1.5,
                   label=f"T = {float(threshold):.4g}")
        ax.set_xlabel("X_i: mean distance to the K nearest neighbours")
        ax.set_ylabel("density")
        ax.set_title(title or "Outlier scores")
        ax.legend(fontsize=8)
        _save_figure(fig, out, force)
    finally:
        plt.close(fig)
    return out


def _save_figure(fig, out: Path, force: bool) -> None:
    """Lay out a matplotlib figure and write it atomically in the format of its extension."""
    fmt = check_picture_path(out)
    fig.tight_layout()
    with atomic_path(out, force) as tmp:
        fig.savefig(tmp, format=fmt)


def _tree_edges(tree: Any, n: int) -> list[tuple[int, int, float]]:
    """Edges (i, j, w) from an MST given as a networkx graph, a scipy sparse / dense matrix,
    or a sequence of (i, j[, w]) rows."""
    if hasattr(tree, "edges") and hasattr(tree, "nodes"):  # networkx
        return [(int(i), int(j), float(d.get("weight", 1.0))) for i, j, d in tree.edges(data=True)]
    if hasattr(tree, "tocoo"):
        coo = tree.tocoo()
        return [(int(i), int(j), float(w)) for i, j, w in zip(coo.row, coo.col, coo.data, strict=True)]
    arr = np.asarray(tree, dtype=float)
    if arr.ndim == 2 and arr.shape == (n, n):
        i, j = np.nonzero(np.triu(arr + arr.T))
        return [(int(a), int(b), float(arr[a, b] or arr[b, a])) for a, b in zip(i, j, strict=True)]
    rows = [tuple(r) for r in np.atleast_2d(arr)]
    return [(int(r[0]), int(r[1]), float(r[2]) if len(r) > 2 else 1.0) for r in rows if len(r) >= 2]


def mst_plot(
    path: str | os.PathLike,
    tree: Any,
    images: np.ndarray,
    labels: Sequence[str],
    keys: Sequence[int] = (),
    force: bool = False,
    thumbnails: bool | None = None,
    title: str | None = None,
) -> Path:
    """A picture of the minimum spanning tree for choosing key-frames: the tree laid out in
    2-D (classical MDS of tree hop distances, refined by Kamada-Kawai), a thumbnail or a dot at
    every frame, the frame's number and label beside it, key-frames ringed in red.

    ``tree``: the MST as a networkx graph, a sparse/dense matrix, or rows (i, j[, w]).
    Thumbnails are drawn when there are at most 150 frames unless ``thumbnails`` says otherwise.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    images = _check_images(images)
    n = len(images)
    if len(labels) != n:
        raise ReseqError(f"{n} frames but {len(labels)} labels")
    check_picture_path(path)
    out = check_writable(path, force)
    edges = _tree_edges(tree, n)
    from .layouts import tree_positions

    pos = tree_positions(n, edges)
    pos[:, 1] = 1 - pos[:, 1]  # layouts put y downwards, as a screen does; matplotlib, upwards
    if thumbnails is None:
        thumbnails = n <= 150
    size = min(14.0, max(6.0, math.sqrt(n) * 1.6))
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    try:
        for a, b, _ in edges:
            ax.plot(pos[[a, b], 0], pos[[a, b], 1], color="#999999", lw=1, zorder=1)
        keyset = {int(k) for k in keys}
        if thumbnails:
            h, w = images.shape[1:3]
            target = size * 100 / max(7.0, math.sqrt(n) * 2.8)  # pixels per thumbnail
            zoom = target / max(h, w)
            for i in range(n):
                box = OffsetImage(images[i], zoom=zoom)
                ab = AnnotationBbox(box, pos[i], frameon=True, pad=0.1, zorder=2,
                                    bboxprops={"edgecolor": "red" if i in keyset else "#cccccc",
                                               "lw": 3 if i in keyset else 0.5})
                ax.add_artist(ab)
        else:
            colors = ["red" if i in keyset else "#4c72b0" for i in range(n)]
            ax.scatter(pos[:, 0], pos[:, 1], s=18, c=colors, zorder=2)
        fs = 7 if n > 60 else 8
        for i in range(n):
            text = f"{i}" if n > 60 else f"{i} {labels[i]}"
            ax.annotate(text, pos[i], xytext=(0, -3), textcoords="offset points", ha="center",
                        va="top", fontsize=fs, color="red" if i in keyset else "black", zorder=5,
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none",
                              "alpha": 0.8})
        ax.set_xlim(-0.08, 1.08)
        ax.set_ylim(-0.08, 1.08)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title or f"Minimum spanning tree of {n} frames (frame numbers; key-frames in red)")
        _save_figure(fig, out, force)
    finally:
        plt.close(fig)
    return out


# --------------------------------------------------------------------------------------------
# layouts (reseq.layouts): a picture of where each frame is placed

#: the longest side of a layout picture in pixels; thumbnails shrink to keep within it
LAYOUT_MAX_SIDE = 8192
_LAYOUT_FORMATS = (".png", ".svg", ".html", ".htm")


def layout_geometry(lay: Any, image_hw: tuple[int, int], thumb: int = 96,
                    max_side: int = LAYOUT_MAX_SIDE) -> tuple[np.ndarray, int, int, int, int]:
    """Where :func:`layout_picture` draws each frame: ``(xy, tw, th, width, height)``, the
    top-left corner of every thumbnail in pixels, the thumbnail size and the canvas size.

    Thumbnails have ``thumb`` pixels on their long side unless the canvas would pass
    ``max_side`` pixels (then they shrink, down to 4 pixels). Cell layouts (``grid_shape``) put
    one thumbnail per cell with a 4-pixel gutter; free layouts (``mst``, ``radial``) map the unit
    square onto a square canvas scaled so that the median frame's thumbnail just clears its
    nearest neighbour's (at least 4 thumbnails wide).
    """
    h, w = image_hw
    n = len(lay.positions)
    pos = np.asarray(lay.positions, dtype=float)

    def size(t: float) -> tuple[int, int]:
        s = t / max(h, w)
        return max(1, round(w * s)), max(1, round(h * s))

    gut = 4
    if lay.grid_shape is not None:
        rows, cols = lay.grid_shape
        t = float(thumb)
        tw, th = size(t)
        while max(cols * (tw + gut), rows * (th + gut)) + gut > max_side and t > 4:
            t = max(4.0, t * 0.9)
            tw, th = size(t)
        cells = np.asarray(lay.cells)
        xy = np.c_[gut + cells[:, 1] * (tw + gut), gut + cells[:, 0] * (th + gut)]
        return (xy.astype(int), tw, th, cols * (tw + gut) + gut, rows * (th + gut) + gut)
    spread = 1.5 * math.sqrt(n)  # thumbnails across the canvas
    if n > 1:
        from scipy.spatial import cKDTree

        d, _ = cKDTree(pos).query(pos, k=2)
        nn = float(np.median(d[:, 1]))
        if nn > 0:
            spread = 1.1 / nn  # the median frame just clears its nearest neighbour
    spread = max(4.0, spread)
    t = float(thumb)
    tw, th = size(t)
    while spread * max(tw, th) + max(tw, th) + 2 * gut > max_side and t > 4:
        t = max(4.0, t * 0.9)
        tw, th = size(t)
    S = spread * max(tw, th)
    W = round(S + tw + 2 * gut)
    H = round(S + th + 2 * gut)
    xy = np.c_[gut + pos[:, 0] * S, gut + pos[:, 1] * S]
    return np.round(xy).astype(int), tw, th, W, H


def _thumb_b64(img: np.ndarray, tw: int, th: int) -> str:
    import base64

    from PIL import Image

    im = Image.fromarray(img, "RGB")
    if im.size != (tw, th):
        im = im.resize((tw, th), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def layout_picture(path: str | os.PathLike, lay: Any, images: np.ndarray,
                   labels: Sequence[str], thumb: int = 96, force: bool = False,
                   title: str | None = None) -> Path:
    """Draw a :class:`reseq.layouts.Layout`: every frame as a thumbnail at its place, the
    layout's edges as thin grey lines under them. Returns the path written.

    ``.png`` (Pillow): the canvas stays within :data:`LAYOUT_MAX_SIDE` pixels a side (8192:
    thumbnails shrink for thousands of frames: a 5,000-frame grid of 71 x 71 cells gets
    thumbnails of about 110 pixels, never fewer than 4); ``.svg`` and ``.html``: the same geometry
    (:func:`layout_geometry`), thumbnails embedded as base64 JPEG, each frame's label as its
    tooltip (``<title>`` in SVG, ``title=`` in HTML) and its index as ``data-index``.
    """
    import html as _html

    images = _check_images(images)
    n = len(images)
    if len(labels) != n or len(lay.positions) != n:
        raise ReseqError(f"{n} frames but {len(labels)} labels and {len(lay.positions)} places")
    if isinstance(thumb, bool) or int(thumb) != thumb or thumb < 4:
        raise ReseqError(f"thumbnail size must be an integer of at least 4 pixels, got {thumb!r}")
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in _LAYOUT_FORMATS:
        raise ReseqError(f"cannot tell what to write for {str(path)!r}: use .png, .svg or .html")
    out = check_writable(out, force)
    xy, tw, th, W, H = layout_geometry(lay, images.shape[1:3], int(thumb))
    centre = xy + np.array([tw / 2, th / 2])
    title_h = 28 if title else 0
    if suffix == ".png":
        from PIL import Image, ImageDraw

        canvas = Image.new("RGB", (W, H + title_h), "white")
        draw = ImageDraw.Draw(canvas)
        if title:
            draw.text((6, 6), _fit_text(draw, title, _font(16), W - 12), fill="black",
                      font=_font(16))
        for a, b in lay.edges:
            draw.line([(centre[a, 0], centre[a, 1] + title_h),
                       (centre[b, 0], centre[b, 1] + title_h)], fill=(170, 170, 170), width=1)
        for i in _bar(np.arange(n), "drawing"):
            im = Image.fromarray(images[i], "RGB")
            if im.size != (tw, th):
                im = im.resize((tw, th), Image.Resampling.LANCZOS)
            canvas.paste(im, (int(xy[i, 0]), int(xy[i, 1]) + title_h))
        with atomic_path(out, force) as tmp:
            canvas.save(tmp, format="PNG", optimize=True)
        return out
    esc = _html.escape
    lines = "".join(f'<line x1="{centre[a, 0]:.1f}" y1="{centre[a, 1]:.1f}" '
                    f'x2="{centre[b, 0]:.1f}" y2="{centre[b, 1]:.1f}"/>' for a, b in lay.edges)
    if suffix == ".svg":
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + title_h}" '
                 f'viewBox="0 {-title_h} {W} {H + title_h}">',
                 f'<rect x="0" y="{-title_h}" width="{W}" height="{H + title_h}" fill="white"/>']
        if title:
            parts.append(f'<text x="6" y="{-8}" font-family="sans-serif" font-size="16">'
                         f'{esc(title)}</text>')
        parts.append(f'<g stroke="#aaaaaa" stroke-width="1">{lines}</g>')
        for i in _bar(np.arange(n), "drawing"):
            parts.append(f'<image data-index="{i}" x="{xy[i, 0]}" y="{xy[i, 1]}" width="{tw}" '
                         f'height="{th}" href="{_thumb_b64(images[i], tw, th)}">'
                         f'<title>{esc(str(labels[i]))}</title></image>')
        parts.append("</svg>\n")
        text = "\n".join(parts)
    else:
        imgs = [f'<img data-index="{i}" style="left:{xy[i, 0]}px;top:{xy[i, 1]}px" '
                f'width="{tw}" height="{th}" title="{esc(str(labels[i]), quote=True)}" '
                f'alt="{esc(str(labels[i]), quote=True)}" src="{_thumb_b64(images[i], tw, th)}">'
                for i in _bar(np.arange(n), "drawing")]
        text = "\n".join([
            "<!DOCTYPE html>", '<html><head><meta charset="utf-8">',
            f"<title>{esc(title or 'reseq layout')}</title>",
            "<style>body{font-family:sans-serif;margin:8px}#map{position:relative;"
            f"width:{W}px;height:{H}px}}#map img{{position:absolute}}"
            "#map img:hover{outline:2px solid #d33;z-index:1}"
            "#map svg{position:absolute;left:0;top:0}</style></head><body>",
            f"<h3>{esc(title)}</h3>" if title else "",
            f'<div id="map"><svg width="{W}" height="{H}"><g stroke="#aaaaaa" '
            f'stroke-width="1">{lines}</g></svg>',
            *imgs, "</div></body></html>\n"])
    with atomic_path(out, force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out
