#!/usr/bin/env python3
"""Build the third development set: blind real clips from Debian game and documentation packages.

    python scripts/build_devset3.py OUT_DIR [--cache DIR]

Downloads three pinned Debian packages with ``apt-get download PKG=VERSION`` (run
``apt-get update`` first), checks each ``.deb`` against its pinned sha256, unpacks it with
``dpkg-deb -x`` and writes one folder of PNG frames per clip, in true order, into ``OUT_DIR``,
plus ``OUT_DIR/manifest.csv`` with the columns of ``../shared/dev-clips/manifest.csv``. None of
these packages is used by the first set or by ``scripts/build_devset2.py``. The set is built to
be *blind* for issue 16: no ordering objective was run on it while it was made, only pictures
and pixel statistics were looked at.

- ``supertux-data`` (pixel art): each clip is one action of a ``.sprite`` file, its images in the
  order the action lists them (the file may list an image several times: a hold); all images of
  an action share its hitbox, so they are drawn at one anchor.
- ``freedink-data`` (pre-rendered cartoon sprites): each clip is one sequence of ``Dink.ini``'s
  ``load_sequence`` lines, its frames ``PATH01.bmp``, ``PATH02.bmp``, ... (loose or packed in
  the folder's ``dir.ff``), drawn at the sequence's offset, white as the transparent colour (as
  the engine draws them); ``set_frame_frame`` lines of the sequence are applied.
- ``opencv-doc`` (video): stretches of single shots of the sample videos, every frame or every
  second one, the larger ones halved in size (box filter).

Sprites go through ``build_devset2.composite`` (white canvas holding all frames at their anchor,
integer nearest-neighbour upscale to at least 128 px on the longer side, blank frames dropped,
holds kept once). A play-once animation that ends on its own first picture is cut at three
quarters of its length (docs/motion-objective.md). ``cyclic`` is ``yes`` for animations the game
plays as loops.

Needs numpy, Pillow and PyAV (the reseq venv has them), ``apt-get`` and ``dpkg-deb``.
"""

from __future__ import annotations

import argparse
import itertools
import re
import struct
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_devset2 import composite, fetch, gray64, rgba, write_clip, write_manifest

PACKAGES = {
    "supertux-data": ("0.6.3-2",
                      "a6ad8865972f1dbb5e7b49f4e1b381dd16a68f3028a3502cfeaca2400285d27f",
                      "GPL-3+ (SuperTux; Debian copyright, Files: *)"),
    "freedink-data": ("1.08.20190120-2",
                      "5c3f0c22958364460057d9df5318a9a2a0fb84b9174cab57a9d50ad03a73d66c",
                      "Zlib (Dink Smallwood data, (c) Seth A. Robinson)"),
    "opencv-doc": ("4.6.0+dfsg-12",
                   "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
                   "Apache-2.0 AND BSD-3-Clause (OpenCV; Debian copyright, Files: *)"),
}

SUPERTUX = "usr/share/games/supertux2/images"
DINK = "usr/share/games/dink/dink"
OPENCV = "usr/share/doc/opencv-doc/examples/data"

# (clip, package, kind, spec, style, cyclic, note)
CLIPS = [
    # SuperTux: (sprite file, action). Every action below is played once by the engine
    # (set_action(..., 1) or "loops 1" in the file) unless cyclic says yes.
    ("st_mole_peeking", "supertux-data", "sprite", ("creatures/mole/mole.sprite", "peeking"),
     "pixel-art", "no", "hard, comes back on itself: a mole rises out of its hill, turns its "
     "head left, to the front and right, and sinks back"),
    ("st_rcrystallo_detected", "supertux-data", "sprite",
     ("creatures/crystallo/rcrystallo.sprite", "detected-left"), "pixel-art", "no",
     "hard, turns less than a full turn: a crystal creature tips up from lying to standing"),
    ("st_tux_grow", "supertux-data", "sprite", ("creatures/tux/tux.sprite", "grow-right"),
     "pixel-art", "no", "easy, grows: Tux grows from small to big"),
    ("st_tux_buttjump", "supertux-data", "sprite",
     ("creatures/tux/tux.sprite", "big-buttjump-right"), "pixel-art", "no",
     "hard, fast action with few frames: big Tux tucks in for a butt-jump"),
    ("st_trampoline_swinging", "supertux-data", "sprite",
     ("objects/trampoline/trampoline.sprite", "swinging"), "pixel-art", "no",
     "hard, comes back on itself with few frames: a trampoline is pressed down, springs up "
     "and settles"),
    ("st_explosion", "supertux-data", "sprite", ("objects/explosion/explosion.sprite", "default"),
     "pixel-art", "no", "easy, explosion: a fireball flares and turns to fading smoke"),
    ("st_fatbat_burning", "supertux-data", "sprite",
     ("creatures/fatbat/fatbat.sprite", "burning-left"), "pixel-art", "no",
     "easy, death: a bat catches fire and burns away"),
    ("st_door_opening", "supertux-data", "sprite", ("objects/door/door.sprite", "opening"),
     "pixel-art", "no", "easy: a wooden door swings open"),
    ("cyc_st_foxsleep", "supertux-data", "sprite", ("decal/forest/foxsleep.sprite", "normal"),
     "pixel-art", "yes", "loop, hovers: a sleeping fox breathes, its Zs pulse"),
    # Dink Smallwood: the load_sequence line's path prefix in Dink.ini. Attacks, deaths and
    # effects are played once; the idle and the fireplace loop.
    ("dink_sword_swing", "freedink-data", "dink", r"graphics\dink\sword\hit\d-sa2-", "cartoon",
     "no", "hard, fast action with few frames, arm out and back: Dink slashes with his sword "
     "and draws it back"),
    ("dink_goblin_attack", "freedink-data", "dink",
     r"graphics\foes\goblin\soldier\attack\f01a2-", "cartoon", "no",
     "hard, arm out and back with few frames: a goblin soldier strikes with its axe"),
    ("dink_goblin_hammer_attack", "freedink-data", "dink",
     r"graphics\foes\goblin\hammer\attack\f01a2-", "cartoon", "no",
     "hard, arm out and back with few frames: a goblin swings a hammer down"),
    ("dink_goblin_horns_attack", "freedink-data", "dink",
     r"graphics\foes\goblin\horns\attack\f01a2-", "cartoon", "no",
     "hard, arm out and back with few frames: a horned goblin swings its club"),
    ("dink_bow_draw", "freedink-data", "dink", r"graphics\dink\bow\hit\d-ba3-", "cartoon",
     "no", "hard, fast action with few frames, arm out and back: Dink draws his bow and "
     "shoots"),
    ("dink_knight_attack", "freedink-data", "dink", r"graphics\people\knight\red\attack\c05a2-",
     "cartoon", "no", "hard, arm out and back with few frames: a red knight strikes with his "
     "axe"),
    ("dink_slayer_attack", "freedink-data", "dink", r"graphics\foes\slayers\attack\f04a2-",
     "cartoon", "no", "hard, fast action with few frames: a slayer lunges with its claws"),
    ("dink_goblin_spin_attack", "freedink-data", "dink",
     r"graphics\foes\goblin\horns\attack2\f01sa-", "cartoon", "no",
     "hard, fast action with few frames, a turn: a horned goblin spins round once with its "
     "club (6 frames; pictures half a turn apart look alike)"),
    ("dink_whirl", "freedink-data", "dink", r"graphics\effects\splode\whirl-", "cartoon", "no",
     "hard, hovers: a cloud of fire swirls in place (created with brain 7: played once)"),
    ("dink_sparks", "freedink-data", "dink", r"graphics\effects\sparks\spark-", "cartoon", "no",
     "hard, hovers: a cluster of sparks twinkles (created with brain 7 where an item is "
     "picked up: played once)"),
    ("dink_die", "freedink-data", "dink", r"graphics\dink\die\ds-x3-", "cartoon", "no",
     "easy, death: Dink staggers and collapses"),
    ("dink_explosion", "freedink-data", "dink", r"graphics\effects\splode\explo-", "cartoon",
     "no", "easy, explosion: a fireball grows and leaves a ring of smoke"),
    ("dink_atomic", "freedink-data", "dink", r"graphics\effects\atomic\atomc-", "cartoon", "no",
     "easy, explosion: a mushroom cloud rises, spreads and fades"),
    ("dink_chest_open", "freedink-data", "dink", r"graphics\bonuses\chest\chst1-", "cartoon",
     "no", "easy: a chest's lid opens"),
    ("dink_castle_door", "freedink-data", "dink", r"graphics\struct\castle\cdoor-", "cartoon",
     "no", "easy, turns less than a full turn: a castle's drawbridge door swings down open"),
    ("dink_magic", "freedink-data", "dink", r"graphics\effects\magic\magc1-", "cartoon", "no",
     "easy, grows: a ball of red magic particles swells and thins out"),
    ("dink_treefire", "freedink-data", "dink", r"graphics\lands\trees\treefire\tree-f",
     "cartoon", "no", "easy (flames flicker on the way): a fir tree catches fire and burns "
     "down to a charred trunk"),
    ("cyc_dink_idle", "freedink-data", "dink", r"graphics\dink\idle\ds-i2-", "cartoon", "yes",
     "loop, comes back on itself: Dink idles, the loop plays forward and back"),
    ("cyc_dink_fire", "freedink-data", "dink", r"graphics\inside\details\fire-", "cartoon",
     "yes", "loop, hovers: a fireplace fire flickers"),
    ("cyc_dink_boatman", "freedink-data", "dink", r"graphics\people\boatman\c12r3-",
     "cartoon", "yes", "loop (brain 6), arms out and back: a boatman rows"),
    ("cyc_dink_axe", "freedink-data", "dink", r"graphics\effects\axe\wpn02-", "cartoon",
     "yes", "loop (a thrown axe in flight), a wheel turning: the axe spins"),
    # OpenCV sample videos: (file, first frame, last frame, step, reduce); each a single shot
    ("vid_megamind_a", "opencv-doc", "video", ("Megamind.avi", 1, 97, 2, 2), "3d-render", "no",
     "hard, hovers: rendered film, a woman at a dinner table talks and tilts her head"),
    ("vid_megamind_b", "opencv-doc", "video", ("Megamind.avi", 98, 153, 1, 2), "3d-render",
     "no", "hard, hovers: rendered film, a man across the table talks"),
    ("vid_megamind_c", "opencv-doc", "video", ("Megamind.avi", 154, 199, 1, 2), "3d-render",
     "no", "hard, hovers: rendered film, the woman answers, raising her glass"),
    ("vid_megamind_d", "opencv-doc", "video", ("Megamind.avi", 200, 269, 1, 2), "3d-render",
     "no", "hard, hovers: rendered film, close-up of the man talking: he shuts his eyes, tilts his "
     "head and looks up again"),
    ("vid_vtest", "opencv-doc", "video", ("vtest.avi", 0, 118, 2, 2), "natural", "no",
     "easy: fixed camera over a square, pedestrians walk across"),
    ("vid_tree", "opencv-doc", "video", ("tree.avi", 0, 52, 1, 1), "natural", "no",
     "hard, hovers: hand-held camera on a tree, leaves sway (before a hand enters the frame)"),
]


# --- SuperTux ----------------------------------------------------------------------------

_SEXP = re.compile(r'\(|\)|"[^"]*"|;[^\n]*|[^\s()";]+')


def parse_sexp(text: str) -> list:
    """A SuperTux ``.sprite`` file as nested lists of strings."""
    stack: list[list] = [[]]
    for tok in _SEXP.findall(text):
        if tok.startswith(";"):
            continue
        if tok == "(":
            stack.append([])
        elif tok == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok[1:-1] if tok.startswith('"') else tok)
    return stack[0]


def sprite_clip(root: Path, spec) -> tuple[list[Image.Image], str]:
    rel, action = spec
    path = root / SUPERTUX / rel
    tree = parse_sexp(path.read_text())[0]
    for node in tree[1:]:
        if isinstance(node, list) and node and node[0] == "action":
            fields = {f[0]: f[1:] for f in node[1:] if isinstance(f, list) and f}
            if fields.get("name") == [action]:
                break
    else:
        raise KeyError(f"{rel}: no action {action}")
    images = fields["images"]
    cache: dict[str, Image.Image] = {}
    sprites = []
    for name in images:  # listed order is playing order; a repeated name is a hold
        if name not in cache:
            cache[name] = rgba(path.parent / name)
        sprites.append((cache[name], 0, 0))  # one hitbox for the action: one anchor
    return composite(sprites), f"{SUPERTUX}/{rel} action {action} ({len(images)} images)"


# --- Dink Smallwood ----------------------------------------------------------------------

def _ci_path(base: Path, parts: list[str]) -> Path | None:
    """``base/parts...`` matched case-insensitively (the data comes from a DOS game)."""
    p = base
    for part in parts:
        if not p.is_dir():
            return None
        match = next((c for c in p.iterdir() if c.name.lower() == part.lower()), None)
        if match is None:
            return None
        p = match
    return p


def _dirff(path: Path) -> dict[str, bytes]:
    """Files packed in a Dink ``dir.ff``: a count, then (offset, 13-byte name) records."""
    data = path.read_bytes()
    (n,) = struct.unpack_from("<i", data, 0)
    recs = [struct.unpack_from("<i13s", data, 4 + 17 * i) for i in range(n)]
    return {name.split(b"\0")[0].decode().lower(): data[off:recs[i + 1][0]]
            for i, (off, name) in enumerate(recs[:-1])}


def dink_frames(root: Path, prefix: str) -> list[Image.Image]:
    """Frames ``prefix01.bmp``, ``prefix02.bmp``, ... until one is missing (as the engine
    loads them), loose or from the folder's ``dir.ff``."""
    *dirs, stem = prefix.split("\\")
    folder = _ci_path(root / DINK, dirs)
    packed = _dirff(folder / "dir.ff") if (folder / "dir.ff").is_file() else {}
    frames = []
    for i in itertools.count(1):
        name = f"{stem}{i:02d}.bmp".lower()
        loose = _ci_path(folder, [name])
        if loose is not None:
            frames.append(Image.open(loose).convert("RGB"))
        elif name in packed:
            frames.append(Image.open(BytesIO(packed[name])).convert("RGB"))
        else:
            return frames


def _keyed(im: Image.Image) -> Image.Image:
    """White is the engine's transparent colour."""
    a = np.asarray(im.convert("RGB"))
    alpha = np.where((a == 255).all(axis=2), 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([a, alpha]), "RGBA")


def dink_clip(root: Path, prefix: str) -> tuple[list[Image.Image], str]:
    ini = (root / DINK / "Dink.ini").read_text(errors="replace").splitlines()
    line = next(ln.split() for ln in ini
                if re.match(r"load_sequence(_now)?\s", ln) and ln.split()[1].lower()
                == prefix.lower())
    seq = int(line[2])
    nums = [int(v) for v in line[3:] if re.fullmatch(r"-?\d+", v)]
    xoff, yoff = (nums[1], nums[2]) if len(nums) >= 3 else (0, 0)
    frames = dink_frames(root, prefix)
    order: list[Image.Image | None] = list(frames)
    note = ""
    for ln in ini:  # set_frame_frame SEQ FRAME TSEQ TFRAME (TSEQ -1: the sequence ends there)
        f = ln.split()
        if len(f) >= 4 and f[0] == "set_frame_frame" and int(f[1]) == seq:
            k = int(f[2]) - 1
            if int(f[3]) == -1:
                order = order[:k]
                note += f"; ends before frame {k + 1} (set_frame_frame)"
            elif int(f[3]) == seq:
                while len(order) <= k:
                    order.append(None)
                order[k] = frames[int(f[4]) - 1]
                note += f"; frame {k + 1} shows frame {f[4]} (set_frame_frame)"
    sprites = [(_keyed(im), -xoff, -yoff) for im in order if im is not None]
    return (composite(sprites),
            f"{DINK}/{prefix.replace(chr(92), '/')}NN.bmp (Dink.ini sequence {seq}, "
            f"{len(frames)} frames{note})")


# --- video -------------------------------------------------------------------------------

def video_clip(root: Path, spec) -> tuple[list[Image.Image], str]:
    import av

    name, first, last, step, reduce = spec
    out = []
    with av.open(str(root / OPENCV / name)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i > last:
                break
            if i >= first and (i - first) % step == 0:
                im = frame.to_image().convert("RGB")
                out.append(im.reduce(reduce) if reduce > 1 else im)
    size = f", size divided by {reduce} (box filter)" if reduce > 1 else ""
    return out, f"{OPENCV}/{name} frames {first}-{last} every {step}{size}"


def cut_at_repeat(frames: list[Image.Image], where: str) -> tuple[list[Image.Image], str]:
    """Cut a play-once clip before the first picture that repeats an earlier one (not the
    one before it: holds are already kept once). Two identical frames have no true order
    between them, so keeping both would score a reconstruction on a coin toss."""
    seen = set()
    for i, f in enumerate(frames):
        key = f.tobytes()
        if key in seen:
            return frames[:i], where + f" (frames 0-{i - 1} of {len(frames)}: frame {i} repeats " \
                "an earlier picture)"
        seen.add(key)
    return frames, where


BUILDERS = {"sprite": sprite_clip, "dink": dink_clip, "video": video_clip}


def build(prog: str, doc: str, packages: dict, clips: list, builders: dict, cache_name: str
          ) -> None:
    """The command line of a development-set builder: fetch ``packages``, write ``clips``.

    Each clip is ``(name, package, kind, spec, style, cyclic, note)``; ``builders[kind](root,
    spec)`` returns its frames in true order and where they come from. Play-once clips get the
    cuts described in the module docstring. Shared by ``build_devset4.py``.
    """
    ap = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the clips into (must not exist)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / cache_name,
                    help="where the .deb files are downloaded and unpacked")
    args = ap.parse_args()
    if args.out.exists():
        sys.exit(f"{prog}: {args.out} exists; give a new folder")
    roots = {pkg: fetch(pkg, args.cache, packages) for pkg in packages}
    args.out.mkdir(parents=True)
    rows = []
    for name, pkg, kind, spec, style, cyclic, note in clips:
        frames, where = builders[kind](roots[pkg], spec)
        if cyclic == "no":
            frames, where = cut_at_repeat(frames, where)
        g = [gray64(f) for f in frames]
        steps = [float(np.abs(a - b).mean()) for a, b in itertools.pairwise(g)]
        if cyclic == "no" and float(np.abs(g[-1] - g[0]).mean()) < 0.5 * float(np.median(steps)):
            # ends on its first picture: no time-symmetric measure can tell it from its reverse
            keep = round(0.75 * len(frames))
            frames, g = frames[:keep], g[:keep]
            where += f" (frames 0-{keep - 1} of {len(steps) + 1}: it ends on its first frame)"
        if len(frames) < 6:
            sys.exit(f"{prog}: {name} has only {len(frames)} frames (at least 6)")
        rows.append(write_clip(args.out, name, frames, g, pkg, packages[pkg], where, style,
                               cyclic, note))
    write_manifest(args.out, rows)


def main() -> None:
    build("build_devset3", __doc__, PACKAGES, CLIPS, BUILDERS, "reseq-devset3")


if __name__ == "__main__":
    main()
