"""The reliability catalogue: bad inputs, hostile paths, faults and limits against the CLI.

One table of cases (:data:`CASES`), three classes:

* ``files`` -- a user's files are sacred: no output on an empty path, on a source (also through
  a symlink or a hard link), inside a source folder's frames, in a folder holding files reseq did
  not write; ``--force`` replaces only a file reseq is asked to write;
* ``resources`` -- sizes, frame counts, output lengths and memory estimates are checked before
  the work starts, against limits that ``RESEQ_MAX_MEMORY`` / ``RESEQ_MAX_FRAMES`` override;
* ``errors`` -- every failure is one line (write errors, decompression bombs, symlink loops,
  a non-UTF-8 manifest, options out of range, mismatched extensions), and a command that writes
  nothing does not exit 0.

Every case runs in a fresh folder holding real frames (8 frames of a dev clip, 96 x 128), a
small MP4 of them and, where needed, a tiny trained VAE; it asserts the exit code, that stderr
holds exactly one ``reseq: error: ...`` line (none for a case that succeeds) besides
``reseq: warning: ...`` lines and nothing else, and that every file that was in the folder
before is byte-identical afterwards (sha256), with no hidden temporary file left behind.
Most cases run in-process (click's runner); signals, permissions and the check for raw
tracebacks and Python warnings run ``reseq`` in a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLIP = "cyc_kenney_robot_walk"  # 8 frames, 96 x 128 RGB
FAST = ("--size", "64", "--metric", "l2")  # no network: the cases that run to the end are quick


# --------------------------------------------------------------------------------------------
# the folder every case starts from


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels in a few bytes (a decompression bomb
    as far as its header goes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def template(tmp_path_factory, dev_clips) -> Path:
    """frames/ (8 PNGs), clip.mp4 (the same frames), user/ (a user's folder: notes and frames),
    corpus/ (one clip and a manifest), prev/ (numbered PNGs reseq wrote earlier)."""
    from reseq.render import write_sequence

    root = tmp_path_factory.mktemp("reliability-template")
    shutil.copytree(dev_clips / CLIP, root / "frames")
    for p in (root / "frames").iterdir():
        p.chmod(0o644)
    images = np.stack([np.asarray(Image.open(p).convert("RGB"))
                       for p in sorted((root / "frames").iterdir())])
    write_sequence(root / "clip.mp4", images, [str(i) for i in range(8)], [1.0] * 7 + [None])
    user = root / "user"
    user.mkdir()
    (user / "notes.txt").write_text("the user's notes\n")
    shutil.copy(root / "frames" / "0000.png", user / "0000.png")
    corpus = root / "corpus"
    shutil.copytree(root / "frames", corpus / "walk")
    (corpus / "manifest.csv").write_text("clip,style,cyclic\nwalk,pixel,no\n")
    write_sequence(str(root / "prev") + "/", images[:3], ["a", "b", "c"], [1.0, 1.0, None])
    (root / "precious.txt").write_text("keep me\n")
    return root


@pytest.fixture(scope="session")
def vae_model(tmp_path_factory, template) -> Path:
    """A tiny VAE trained for one epoch (16 px, 4 latent dimensions)."""
    from reseq.synth.vae import load_training_frames, train_vae

    path = tmp_path_factory.mktemp("reliability-model") / "tiny.pt"
    images, _, classes = load_training_frames([template / "frames"], size=16)
    train_vae(images, classes=classes, size=16, latent=4, epochs=1, batch=8,
              checkpoint=path, show_progress=False)
    return path


# --------------------------------------------------------------------------------------------
# set-ups that add something to the case's folder


def _bomb(folder: Path) -> None:  # over twice Pillow's limit: DecompressionBombError
    (folder / "frames" / "0008.png").write_bytes(_png_header(20000, 10000))


def _bomb_warning(folder: Path) -> None:  # over Pillow's limit: DecompressionBombWarning
    (folder / "frames" / "0008.png").write_bytes(_png_header(10000, 10000))


def _bomb_alone(folder: Path) -> None:
    (folder / "bomb").mkdir()
    (folder / "bomb" / "0000.png").write_bytes(_png_header(20000, 10000))
    (folder / "bomb.png").write_bytes(_png_header(20000, 10000))


def _bomb_and_one(folder: Path) -> None:
    (folder / "two").mkdir()
    (folder / "two" / "0000.png").write_bytes(_png_header(20000, 10000))
    shutil.copy(folder / "frames" / "0001.png", folder / "two" / "0001.png")


def _symlink_loops(folder: Path) -> None:
    (folder / "frames" / "zz.png").symlink_to("zz.png")
    (folder / "frames" / "loop").symlink_to("loop")


def _self_link(folder: Path) -> None:
    (folder / "self").symlink_to("self")


def _link_to_frames(folder: Path) -> None:
    (folder / "link").symlink_to("frames")


def _link_to_video(folder: Path) -> None:
    (folder / "alias.mp4").symlink_to("clip.mp4")


def _hardlink_video(folder: Path) -> None:
    os.link(folder / "clip.mp4", folder / "hard.mp4")


def _prev_with_sheet(folder: Path) -> None:
    (folder / "prev" / "sheet.png").write_bytes(b"the sheet of the earlier run")
    (folder / "prev" / "i.json").write_text("[]\n")


def _latin1_name(folder: Path) -> None:
    shutil.copy(folder / "frames" / "0001.png", os.fsencode(folder / "frames") + b"/\xe9t\xe9.png")


def _tiny(folder: Path) -> None:  # 12 x 16 px frames: too small for AlexNet as they are
    (folder / "tiny").mkdir()
    for i in range(5):
        Image.new("RGB", (12, 16), (40 * i, 90, 200 - 30 * i)).save(folder / "tiny" / f"{i}.png")


def _bad_manifest(folder: Path) -> None:
    (folder / "corpus" / "manifest.csv").write_bytes(b"clip,style,cyclic\nwalk,\xff\xfe\xfa,no\n")


def _existing_outputs(folder: Path) -> None:
    (folder / "out.mp4").write_bytes(b"an earlier output the user keeps")
    (folder / "out.json").write_text("[]\n")
    (folder / "sheet.png").write_bytes(b"not really a png")


def _file_as_folder(folder: Path) -> None:
    (folder / "file.txt").write_text("a regular file\n")


def _empty_report(folder: Path) -> None:
    (folder / "report").mkdir()


@dataclass
class Case:
    """One row of the catalogue.

    ``args``: the command line; ``{model}`` is a copy of the tiny VAE in the folder. ``error``: a regex the one error
    line must match, or None for a case that succeeds. ``cwd``: where it runs (inside the case's
    folder). ``changes``: names of pre-existing files the case may replace (an earlier reseq
    output with --force). ``mode``: "inproc", "subprocess" or "unprivileged". ``check``: a
    further assertion on the folder afterwards."""

    id: str
    cls: str
    args: tuple
    error: str | None
    setup: Callable[[Path], None] | None = None
    cwd: str = "."
    env: dict = field(default_factory=dict)
    changes: tuple = ()
    mode: str = "inproc"
    check: Callable[[Path], None] | None = None
    code: int | None = None


def _is_jpeg(folder: Path) -> None:
    assert (folder / "s.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def _webp_sheet(folder: Path) -> None:
    with Image.open(folder / "mst.webp") as im:
        assert im.format == "WEBP"


def _replaced_prev(folder: Path) -> None:
    names = sorted(p.name for p in (folder / "prev").glob("[0-9]*.png"))
    assert names == [f"{i:04d}.png" for i in range(8)], names


def _has(name: str) -> Callable[[Path], None]:
    def check(folder: Path) -> None:
        assert (folder / name).is_file(), name

    return check


def _native_size(folder: Path) -> None:
    import av

    with av.open(str(folder / "n.mp4")) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (96, 128)  # the frames' own size, not 100000 px


SRC = "frames"
CASES: list[Case] = [
    # ---------------------------------------------------------------- a user's files are sacred
    Case("empty -o in the user's frames", "files", ("order", ".", "-o", "", "--force", *FAST),
         "empty", cwd="frames"),
    Case("empty -o loop", "files", ("loop", SRC, "-o", "", "--force", *FAST), "empty"),
    Case("empty -o inbetween", "files",
         ("inbetween", SRC, "--keys", "0,3", "-o", "", "--force", *FAST), "empty"),
    Case("blank -o", "files", ("order", SRC, "-o", "  ", "--force", *FAST), "empty"),
    Case("empty --sheet", "files", ("order", SRC, "-o", "a.mp4", "--sheet", "", *FAST), "empty"),
    Case("empty --index", "files", ("order", SRC, "-o", "a.mp4", "--index", "", *FAST), "empty"),
    Case("empty --mst-plot", "files", ("inbetween", SRC, "--mst-plot", "", *FAST), "empty"),
    Case("empty outliers -o", "files", ("outliers", SRC, "-o", "", *FAST), "empty"),
    Case("-o . is the source", "files", ("order", ".", "-o", ".", "--force", *FAST),
         "is the source", cwd="frames"),
    Case("-o the source folder", "files", ("order", SRC, "-o", SRC, "--force", *FAST),
         "is the source"),
    Case("-o the source folder/", "files", ("loop", SRC, "-o", "frames/", "--force", *FAST),
         "is the source"),
    Case("-o the source by another path", "files",
         ("order", SRC, "-o", "frames/../frames/", "--force", *FAST), "is the source"),
    Case("-o a symlink to the source", "files",
         ("order", SRC, "-o", "link/", "--force", *FAST), "is the source", setup=_link_to_frames),
    Case("-o a folder inside the source", "files",
         ("order", SRC, "-o", "frames/out/", "--force", *FAST), "inside the source folder"),
    Case("--sheet on a source frame", "files",
         ("order", SRC, "-o", "a.mp4", "--sheet", "frames/0003.png", "--force", *FAST),
         "inside the source folder"),
    Case("--sheet a new image in the source", "files",
         ("order", SRC, "-o", "a.mp4", "--sheet", "frames/sheet.png", *FAST),
         "inside the source folder"),
    Case("--mst-plot on a source frame", "files",
         ("inbetween", SRC, "--mst-plot", "frames/0001.png", "--force", *FAST),
         "inside the source folder"),
    Case("outliers -o on a source frame", "files",
         ("outliers", SRC, "-o", "frames/0002.png", "--force", *FAST), "inside the source"),
    Case("-o the input video", "files", ("order", "clip.mp4", "-o", "clip.mp4", "--force", *FAST),
         "is the source"),
    Case("-o a symlink to the input video", "files",
         ("loop", "clip.mp4", "-o", "alias.mp4", "--force", *FAST), "is the source",
         setup=_link_to_video),
    Case("-o a hard link of the input video", "files",
         ("order", "clip.mp4", "-o", "hard.mp4", "--force", *FAST), "is the source",
         setup=_hardlink_video),
    Case("-o the folder holding the source", "files",
         ("order", SRC, "-o", "./", "--force", *FAST), "contains the source|did not write"),
    Case("-o a user's folder with --force", "files",
         ("order", SRC, "-o", "user/", "--force", *FAST), "did not write.*notes.txt"),
    Case("-o a user's folder without --force", "files",
         ("loop", SRC, "-o", "user/", *FAST), "did not write"),
    Case("--force over an earlier reseq PNG output", "files",
         ("order", SRC, "-o", "prev/", "--force", *FAST), None,
         changes=("prev/0000.png", "prev/0001.png", "prev/0002.png"), check=_replaced_prev),
    Case("an earlier reseq PNG output without --force", "files",
         ("order", SRC, "-o", "prev/", *FAST), "not empty.*--force"),
    Case("existing -o without --force", "files", ("order", SRC, "-o", "out.mp4", *FAST),
         "already exists.*--force", setup=_existing_outputs),
    Case("existing --index without --force", "files",
         ("order", SRC, "-o", "new.mp4", "--index", "out.json", *FAST), "already exists",
         setup=_existing_outputs),
    Case("existing --sheet without --force", "files",
         ("loop", SRC, "-o", "new.gif", "--sheet", "sheet.png", *FAST), "already exists",
         setup=_existing_outputs),
    Case("-o and --index on one file", "files",
         ("order", SRC, "-o", "a.mp4", "--index", "a.mp4", *FAST), "same file"),
    Case("--sheet and --mst-plot on one file", "files",
         ("inbetween", SRC, "--keys", "0,4", "-o", "a.mp4", "--sheet", "p.png", "--mst-plot",
          "p.png", *FAST), "same file"),
    Case("outliers -o and --sheet on one file", "files",
         ("outliers", SRC, "-o", "h.png", "--sheet", "./h.png", *FAST), "same file"),
    Case("--index on a device with --force", "files",
         ("order", SRC, "-o", "a.mp4", "--index", "/dev/null", "--force", *FAST),
         "not a regular file"),
    Case("distances -o empty", "files", ("distances", SRC, "-o", "", *FAST), "\\.npy"),
    Case("distances labels exist", "files",
         ("distances", SRC, "-o", "precious.npy", *FAST), "already exists",
         setup=lambda f: (f / "precious.labels.json").write_text("{}")),
    Case("distances -o on the source video", "files",
         ("distances", "link.npy", "-o", "link.npy", "--force", *FAST), "is the source",
         setup=lambda f: (f / "link.npy").symlink_to("clip.mp4")),
    Case("vae train -o a source frame", "files",
         ("vae", "train", SRC, "-o", "frames/0000.png", "--force", "--epochs", "1"),
         "inside the source folder"),
    Case("vae train -o the --from checkpoint", "files",
         ("vae", "train", SRC, "--from", "{model}", "-o", "{model}", "--force"), "is the source"),
    Case("vae interpolate -o an input image", "files",
         ("vae", "interpolate", "frames/0000.png", "frames/0001.png", "-m", "{model}", "-o",
          "frames/", "--force"), "is the source|inside the source|did not write"),
    Case("vae demo -o the class folder", "files",
         ("vae", "demo", SRC, "-m", "{model}", "-o", SRC, "--force"), "is the source"),
    Case("vae map -o a source frame", "files",
         ("vae", "map", SRC, "-m", "{model}", "-o", "frames/0004.png", "--force"),
         "inside the source folder"),
    Case("--sheet among the numbered frames of -o", "files",
         ("order", SRC, "-o", "out/", "--sheet", "out/0001.png", *FAST), "collide"),
    Case("--force over an earlier run with its sheet and index inside", "files",
         ("order", SRC, "-o", "prev/", "--sheet", "prev/sheet.png", "--index", "prev/i.json",
          "--force", *FAST), None, setup=_prev_with_sheet,
         changes=("prev/0000.png", "prev/0001.png", "prev/0002.png", "prev/sheet.png",
                  "prev/i.json"), check=_replaced_prev),
    Case("evaluate -o the corpus", "files",
         ("evaluate", "corpus", "-o", "corpus", "--metrics", "l2", "--force"), "is the source"),
    Case("evaluate -o a user's folder", "files",
         ("evaluate", "corpus", "-o", "user", "--metrics", "l2", "--force"), "did not write"),
    Case("assets download -d empty", "files", ("assets", "download", "-d", ""), "empty"),
    Case("assets download -d a user's folder", "files", ("assets", "download", "-d", "user"),
         "did not write"),
    Case("dae train -o a source frame", "files",
         ("dae", "train", SRC, "-o", "frames/0005.png", "--force"), "inside the source folder"),
    # ---------------------------------------------------------------- resources bounded first
    Case("--size 100000 does not upscale", "resources",
         ("order", SRC, "-o", "n.mp4", "--size", "100000", "--metric", "l2"), None,
         check=_native_size),
    Case("--size 100000 --upscale", "resources",
         ("order", SRC, "-o", "a.mp4", "--size", "100000", "--upscale", "--metric", "l2"),
         "memory.*RESEQ_MAX_MEMORY"),
    Case("distances --size 100000 --upscale", "resources",
         ("distances", SRC, "-o", "D.npy", "--size", "100000", "--upscale"), "memory"),
    Case("frames --size 100000 (API upscales)", "resources",
         ("frames", SRC, "--size", "100000"), "memory"),
    Case("video --size 100000 --upscale", "resources",
         ("loop", "clip.mp4", "-o", "a.gif", "--size", "100000", "--upscale", "--metric", "l2"),
         "memory"),
    Case("loop --frames 1e9", "resources",
         ("loop", SRC, "-o", "l.mp4", "--frames", "1000000000", *FAST), "RESEQ_MAX_FRAMES"),
    Case("loop --seconds 1e12", "resources",
         ("loop", SRC, "-o", "l.mp4", "--seconds", "1e12", *FAST), "RESEQ_MAX_FRAMES"),
    Case("loop --sample 1e8", "resources",
         ("loop", SRC, "-o", "l.mp4", "--sample", "100000000", *FAST), "RESEQ_MAX_FRAMES"),
    Case("RESEQ_MAX_FRAMES lowered", "resources",
         ("loop", SRC, "-o", "l.mp4", "--frames", "11", *FAST), "11 frames.*limit of 10",
         env={"RESEQ_MAX_FRAMES": "10"}),
    Case("RESEQ_MAX_MEMORY lowered", "resources", ("order", SRC, "-o", "a.mp4", *FAST),
         "memory.*limit of 1.0 KB", env={"RESEQ_MAX_MEMORY": "1K"}),
    Case("RESEQ_MAX_MEMORY lowered for a video", "resources",
         ("order", "clip.mp4", "-o", "a.mp4", *FAST), "memory", env={"RESEQ_MAX_MEMORY": "1K"}),
    Case("RESEQ_MAX_MEMORY raised lets the output through", "resources",
         ("loop", SRC, "-o", "l.gif", "--frames", "30", *FAST), None,
         env={"RESEQ_MAX_MEMORY": "64G"}, check=_has("l.gif")),
    Case("RESEQ_MAX_MEMORY unreadable", "resources", ("order", SRC, "-o", "a.mp4", *FAST),
         "RESEQ_MAX_MEMORY", env={"RESEQ_MAX_MEMORY": "lots"}),
    Case("loop output bigger than memory", "resources",
         ("loop", SRC, "-o", "l.mp4", "--frames", "900000", *FAST), "output of 900,000 frames",
         env={"RESEQ_MAX_MEMORY": "1G"}),
    Case("vae interpolate --steps 1e9", "resources",
         ("vae", "interpolate", "frames/0000.png", "frames/1.png", "-m", "m.pt", "-o", "i.gif",
          "--steps", "1000000000"), "RESEQ_MAX_FRAMES"),
    Case("--fps 1e9", "resources", ("order", SRC, "-o", "a.mp4", "--fps", "1e9", *FAST),
         "--fps"),
    Case("--effort nan", "resources", ("order", SRC, "-o", "a.mp4", "--effort", "nan", *FAST),
         "--effort"),
    Case("frames --start inf", "resources", ("frames", "clip.mp4", "--start", "inf"),
         "finite"),
    Case("--seconds inf", "resources", ("loop", SRC, "-o", "a.mp4", "--seconds", "inf", *FAST),
         "--seconds"),
    # ---------------------------------------------------------------- every error is one line
    Case("--seed -1", "errors", ("order", SRC, "-o", "a.mp4", "--seed", "-1", *FAST), "--seed"),
    Case("--seed 2^40", "errors", ("loop", SRC, "-o", "a.mp4", "--seed", str(2**40), *FAST),
         "--seed"),
    Case("vae train --seed -1", "errors",
         ("vae", "train", SRC, "-o", "m.pt", "--seed", "-1"), "--seed"),
    Case("evaluate --seed -1", "errors",
         ("evaluate", "corpus", "-o", "r", "--seed", "-1"), "--seed"),
    Case("--quantile nan", "errors", ("outliers", SRC, "--quantile", "nan", *FAST),
         "--quantile"),
    Case("--every 100 on 8 frames says so", "errors",
         ("order", SRC, "-o", "a.mp4", "--every", "100", *FAST), "--every.*1 of the 8"),
    Case("--every 100 on a video says so", "errors",
         ("order", "clip.mp4", "-o", "a.mp4", "--every", "100", *FAST), "--every.*of the 8"),
    Case("vae train --epochs 0", "errors", ("vae", "train", SRC, "-o", "m.pt", "--epochs", "0"),
         "--epochs"),
    Case("vae train --resume with nothing left to train", "errors",
         ("vae", "train", SRC, "-o", "{model}", "--resume", "--epochs", "1", "--size", "16",
          "--latent", "4"), "nothing written"),
    Case("vae train over a model without --force", "files",
         ("vae", "train", SRC, "-o", "{model}", "--epochs", "1"), "already exists"),
    Case("vae demo -o a user's folder", "files",
         ("vae", "demo", SRC, "-m", "{model}", "-o", "user", "--force"), "did not write"),
    Case("vae interpolate --size 100000 --upscale", "resources",
         ("vae", "interpolate", "frames/0000.png", "frames/0001.png", "-m", "{model}", "-o",
          "i.gif", "--size", "100000", "--upscale"), "memory"),
    Case("vae interpolate --size 100000 keeps the size", "resources",
         ("vae", "interpolate", "frames/0000.png", "frames/0001.png", "-m", "{model}", "-o",
          "i.gif", "--size", "100000", "--steps", "1"), None, check=_has("i.gif")),
    Case("vae train --resume of a missing model", "errors",
         ("vae", "train", SRC, "-o", "none.pt", "--resume"), "cannot resume"),
    Case("--sheet .jpg writes a JPEG", "errors",
         ("order", SRC, "-o", "a.mp4", "--sheet", "s.jpg", *FAST), None, check=_is_jpeg),
    Case("--mst-plot .webp writes a WebP", "errors",
         ("inbetween", SRC, "--mst-plot", "mst.webp", *FAST), None, check=_webp_sheet),
    Case("--sheet of an unknown format", "errors",
         ("order", SRC, "-o", "a.mp4", "--sheet", "s.xyz", *FAST), "cannot write a picture"),
    Case("--mst-plot .gif", "errors", ("inbetween", SRC, "--mst-plot", "m.gif", *FAST),
         "cannot write a picture"),
    Case("outliers -o .bmp", "errors", ("outliers", SRC, "-o", "h.bmp", *FAST),
         "cannot write a picture"),
    Case("vae map -o .xyz", "errors", ("vae", "map", SRC, "-m", "{model}", "-o", "m.xyz"),
         "cannot write a picture"),
    Case("vae train -o .png", "errors", ("vae", "train", SRC, "-o", "m.png"), "checkpoint"),
    Case("dae train -o .gif", "errors", ("dae", "train", SRC, "-o", "m.gif"), "checkpoint"),
    Case("--index .png", "errors", ("order", SRC, "-o", "a.mp4", "--index", "i.png", *FAST),
         "--index"),
    Case("outliers --sheet with no outliers still writes it", "errors",
         ("outliers", SRC, "--sheet", "o.png", "--quantile", "0.999999", *FAST), None,
         check=_has("o.png")),
    Case("-o below a regular file", "errors",
         ("order", SRC, "-o", "file.txt/a.mp4", *FAST), "is a file, not a folder",
         setup=_file_as_folder),
    Case("--sheet below a regular file", "errors",
         ("order", SRC, "-o", "a.mp4", "--sheet", "file.txt/s.png", *FAST), "not a folder",
         setup=_file_as_folder),
    Case("distances -o below a regular file", "errors",
         ("distances", SRC, "-o", "file.txt/D.npy", *FAST), "not a folder",
         setup=_file_as_folder),
    Case("a decompression bomb alone", "errors", ("order", "bomb.png", "-o", "a.mp4", *FAST),
         "decompression bomb", setup=_bomb_alone),
    Case("a folder of one decompression bomb", "errors",
         ("order", "bomb", "-o", "a.mp4", *FAST), "no readable images", setup=_bomb_alone),
    Case("a bomb and one good frame", "errors", ("order", "two", "-o", "a.mp4", *FAST),
         "only one readable image", setup=_bomb_and_one),
    Case("a bomb among good frames is skipped", "errors",
         ("order", SRC, "-o", "a.mp4", *FAST), None, setup=_bomb, mode="subprocess"),
    Case("a bomb (warning size) among good frames", "errors",
         ("loop", SRC, "-o", "a.gif", *FAST), None, setup=_bomb_warning),
    Case("vae interpolate of a bomb", "errors",
         ("vae", "interpolate", "bomb.png", "frames/0001.png", "-m", "{model}", "-o", "i.gif"),
         "decompression bomb", setup=_bomb_alone),
    Case("symlink loops in a source folder", "errors", ("order", SRC, "-o", "a.mp4", *FAST),
         None, setup=_symlink_loops, mode="subprocess"),
    Case("a newline in an output path", "errors",
         ("order", SRC, "-o", "a\nb.avi", *FAST), r"a\\nb\.avi"),
    Case("a newline in a missing source", "errors",
         ("order", "no\nsuch", "-o", "a.mp4", *FAST), r"no\\nsuch does not exist"),
    Case("a file name that is not UTF-8", "errors",
         ("order", SRC, "-o", "a.mp4", "--index", "a.json", "--index-csv", "--sheet", "s.png",
          *FAST), None, setup=_latin1_name, mode="subprocess"),
    Case("tiny frames: the message names --upscale", "errors",
         ("order", "tiny", "-o", "a.mp4"), "native size.*--upscale", setup=_tiny),
    Case("tiny frames with --upscale run", "errors",
         ("order", "tiny", "-o", "a.mp4", "--upscale", "--size", "64", "--metric", "l2"), None,
         setup=_tiny, check=_has("a.mp4")),
    Case("a source that is a symlink loop", "errors", ("order", "self", "-o", "a.mp4", *FAST),
         "symbolic links", setup=_self_link),
    Case("evaluate --dae a folder", "errors",
         ("evaluate", "corpus", "-o", "r", "--metrics", "dae", "--dae", "user"), "is a folder"),
    Case("-o below a broken symlink", "errors", ("order", SRC, "-o", "gone/a.mp4", *FAST),
         "broken symbolic link", setup=lambda f: (f / "gone").symlink_to("nowhere")),
    Case("a non-UTF-8 manifest", "errors",
         ("evaluate", "corpus", "-o", "r", "--metrics", "l2"), "UTF-8", setup=_bad_manifest),
    Case("read-only output folder", "errors",
         ("order", SRC, "-o", "ro/a.mp4", *FAST), "not writable",
         setup=lambda f: ((f / "ro").mkdir(), (f / "ro").chmod(0o555)), mode="unprivileged"),
    Case("read-only PNG output folder", "errors",
         ("loop", SRC, "-o", "ro/", *FAST), "permission denied|not writable",
         setup=lambda f: ((f / "ro").mkdir(), (f / "ro").chmod(0o555)), mode="unprivileged"),
    Case("report into a read-only folder", "errors",
         ("evaluate", "corpus", "-o", "report", "--metrics", "l2"), "not writable|permission",
         setup=lambda f: (_empty_report(f), (f / "report").chmod(0o555)), mode="unprivileged"),
    Case("an unreadable source folder", "errors", ("order", SRC, "-o", "a.mp4", *FAST),
         "permission denied", setup=lambda f: (f / "frames").chmod(0), mode="unprivileged"),
]

_IDS = [c.id for c in CASES]
assert len(set(_IDS)) == len(_IDS), "case ids must be unique"


# --------------------------------------------------------------------------------------------
# running a case


def _snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(root, name)
            if p.is_symlink() or not p.is_file():
                continue
            try:
                out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
            except PermissionError:
                out[str(p.relative_to(folder))] = "unreadable"
    return out


def _hidden(folder: Path) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob(".*")]


def _restore_modes(folder: Path) -> None:
    for root, dirs, _ in os.walk(folder):
        for d in dirs:
            p = Path(root, d)
            if not p.is_symlink():
                p.chmod(0o755)
    folder.chmod(0o755)


def _check_stderr(case: Case, code: int, stderr: str, stdout: str = "") -> None:
    assert "Traceback" not in stderr + stdout, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("reseq: error: ")]
    others = [line for line in lines
              if not line.startswith(("reseq: error: ", "reseq: warning: "))]
    assert not others, f"stray stderr lines: {others}"
    if case.error is None:
        assert code == 0, stderr
        assert not errors, stderr
    else:
        assert code != 0, f"exit 0 for a bad case; stderr: {stderr!r}"
        if case.code is not None:
            assert code == case.code
        assert len(errors) == 1, stderr
        assert re.search(case.error, errors[0]), errors[0]


def _args(case: Case, model: Path | None) -> list[str]:
    return [str(a).replace("{model}", str(model)) for a in case.args]


@pytest.mark.filterwarnings("ignore::reseq.errors.ReseqWarning")
@pytest.mark.parametrize("case", CASES, ids=_IDS)
def test_catalogue(case: Case, template, tmp_path, monkeypatch, request, run_cli):
    folder = tmp_path / "w"
    shutil.copytree(template, folder, symlinks=True)
    if case.setup is not None:
        case.setup(folder)
    model = None
    if "{model}" in " ".join(case.args):  # a copy in the folder: its bytes are checked too
        model = Path("model.pt")
        shutil.copy(request.getfixturevalue("vae_model"), folder / model)
    before = _snapshot(folder)
    hidden_before = set(_hidden(folder))
    cwd = folder / case.cwd
    args = _args(case, model)
    try:
        if case.mode == "inproc":
            from click.testing import CliRunner

            from reseq.cli import main

            monkeypatch.chdir(cwd)
            res = CliRunner().invoke(main, args, env=case.env)
            if res.exception is not None and not isinstance(res.exception, SystemExit):
                raise res.exception
            _check_stderr(case, res.exit_code, res.stderr, res.stdout)
        else:
            proc = run_cli(*args, env=case.env, cwd=cwd, timeout=300,
                           unprivileged=case.mode == "unprivileged")
            _check_stderr(case, proc.returncode, proc.stderr, proc.stdout)
            assert "Warning:" not in proc.stderr, "a raw Python warning"
    finally:
        _restore_modes(folder)
    after = _snapshot(folder)
    for name, digest in before.items():
        if name in case.changes:
            continue
        assert after.get(name) == digest, f"{name} was changed or removed"
    assert set(_hidden(folder)) == hidden_before, "a hidden temporary file was left behind"
    if case.check is not None:
        case.check(folder)


def test_catalogue_size():
    """At least 60 cases; the classes as the report counts them."""
    counts = {cls: sum(c.cls == cls for c in CASES) for cls in ("files", "resources", "errors")}
    assert sum(counts.values()) == len(CASES) >= 60, counts
    assert min(counts.values()) >= 15, counts


# --------------------------------------------------------------------------------------------
# faults that need a real process or a small disk


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                       (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_signal_leaves_no_temporary_files(sig, code, template, tmp_path):
    """Killed while writing a long PNG sequence: exit code, one line, no hidden folder left."""
    from conftest import _cli_command

    folder = tmp_path / "w"
    shutil.copytree(template, folder, symlinks=True)
    before = _snapshot(folder)
    out = folder / "out"
    out.mkdir()
    proc = subprocess.Popen([*_cli_command(), "loop", "frames", "-o", "out/", "--frames",
                             "200000", *FAST], cwd=folder, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        started = _wait_for(lambda: any(p.name.startswith(".out.") for p in folder.iterdir()),
                            120)
        assert started, "the PNG writer never started"
        time.sleep(0.3)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("reseq: "), stderr
    assert _hidden(folder) == [], "a hidden temporary folder was left behind"
    assert list(out.iterdir()) == []
    after = _snapshot(folder)
    assert all(after.get(k) == v for k, v in before.items())


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KB tmpfs (skipped where mounting is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip() or res.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("args", [
    ("loop", "frames", "-o", "{disk}/l.mp4", "--frames", "3000", "--size", "128", "--metric",
     "l2"),
    ("loop", "frames", "-o", "{disk}/l.gif", "--frames", "400", "--size", "128", "--metric",
     "l2"),
    ("loop", "frames", "-o", "{disk}/pngs/", "--frames", "400", "--size", "128", "--metric",
     "l2"),
    ("order", "frames", "-o", "a.mp4", "--sheet", "{disk}/s.png", "--size", "128", "--metric",
     "l2"),
    ("distances", "frames", "-o", "{disk}/D.npy", "--size", "64", "--metric", "l2"),
], ids=["mp4", "gif", "png-sequence", "sheet", "distances"])
def test_full_disk_is_one_line(args, small_disk, template, tmp_path, run_cli):
    folder = tmp_path / "w"
    shutil.copytree(template, folder, symlinks=True)
    with open(small_disk / "fill", "wb", buffering=0) as f:  # fill the disk to its last byte
        try:
            while True:
                f.write(os.urandom(4096))
        except OSError:
            pass
    keep = _snapshot(small_disk)
    proc = run_cli(*[a.replace("{disk}", str(small_disk)) for a in args], cwd=folder)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and re.match(r"reseq: error: cannot write .*No space left", lines[0]), \
        proc.stderr
    assert _hidden(small_disk) == [] and _snapshot(small_disk) == keep


# --------------------------------------------------------------------------------------------
# the same contract through the Python API


@pytest.mark.parametrize("scale", [1e308, 1e300])
def test_huge_distances_are_refused_with_a_message(scale):
    from reseq.errors import ReseqError
    from reseq.graph import loop, order

    rng = np.random.default_rng(0)
    x = rng.random((40, 2))
    D = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)) * scale
    for solve in (order, loop):
        with pytest.raises(ReseqError, match=r"overflow.*rescale"):
            solve(D)
    # the same matrix rescaled is solved, and the outlier fit works in any units
    assert len(order(D / D.max()).order) == 40


@pytest.mark.parametrize("scale", [1e200, 1.0, 1e-300])
def test_outlier_fit_does_not_depend_on_units(scale):
    from reseq.graph import outliers

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=(60, 2)), [[9.0, 9.0]]])
    D = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    ref = outliers(D)
    res = outliers(D * scale)
    assert res.indices.tolist() == ref.indices.tolist()
    assert res.threshold == pytest.approx(ref.threshold * scale, rel=1e-6)
