#!/usr/bin/env python3
"""Build the second development set: real non-cyclic clips from Debian game data packages.

    python scripts/build_devset2.py OUT_DIR [--cache DIR]

Downloads three pinned Debian packages with ``apt-get download PKG=VERSION`` (run
``apt-get update`` first), checks each ``.deb`` against its pinned sha256, unpacks it with
``dpkg-deb -x`` and writes one folder of PNG frames per clip, in true order, into ``OUT_DIR``,
plus ``OUT_DIR/manifest.csv`` with the columns of ``../shared/dev-clips/manifest.csv``. None of
these packages or clips is in that first set (held apart for issue 16's motion objective: the
first set tunes, this one is held out).

Sprites drawn from an atlas with per-frame offsets are composited at their anchor onto a white
canvas (the union of the clip's frames' boxes plus a 4 px margin) and upscaled by an integer
factor (nearest neighbour) so that the canvas' longer side is at least 128 px. Blank frames
(fully transparent padding) are left out and a frame identical to the one before it (a hold) is
kept once. ``cyclic`` says whether the game plays the animation as a loop (then ``reseq
evaluate`` skips it): attacks, hits and deaths play once, even where they end where they began
(the motions that come back on themselves); the notes give the median step and the
last-to-first difference (mean absolute gray difference at 64 px), as in the first set.

Needs numpy and Pillow (the reseq venv has both), ``apt-get`` and ``dpkg-deb``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGES = {
    "freedroidrpg-data": ("1.0-1",
                          "16c3cfeb82b1ec20c98493bbe1de2e356bd1aec832845630a5a7f12e303baa2b",
                          "GPL-2+ (FreedroidRPG art)"),
    "flare-game": ("1.14-1",
                   "4ab6a8298276013d35a0806257e130d992761af1b749041433b409c3dafec508",
                   "CC-BY-SA-3.0+ (Flare game art)"),
    "lincity-ng-data": ("2.9~git20150314-5",
                        "8f5e85bd42879abdc7099b035d7a3d7468eceb6b93b52a12270c28f3f3c792f9",
                        "GPL-2+ (LinCity-NG art)"),
}

FRPG = "usr/share/freedroidrpg/data/graphics"
FLARE = "usr/share/games/flare/mods"
LINCITY = "usr/share/games/lincity-ng/images/tiles"

# (clip, package, kind, spec, style, note)
CLIPS = [
    ("frpg_614_attack", "freedroidrpg-data", "atlas", ("droids/614", 2, "attack"), "3d-render",
     "droid 614 attacks (arm swings out and back)"),
    ("frpg_614_death", "freedroidrpg-data", "atlas", ("droids/614", 2, "death"), "3d-render",
     "droid 614 collapses"),
    ("frpg_614_gethit", "freedroidrpg-data", "atlas", ("droids/614", 5, "gethit"), "3d-render",
     "droid 614 recoils from a hit and recovers (comes back on itself)"),
    ("frpg_autogun_attack", "freedroidrpg-data", "atlas", ("droids/autogun", 1, "attack"),
     "3d-render", "autogun turret fires (barrels recoil and return, repeatedly)"),
    ("frpg_autogun_death", "freedroidrpg-data", "atlas", ("droids/autogun", 3, "death"),
     "3d-render", "autogun turret breaks down"),
    ("frpg_autogun_gethit", "freedroidrpg-data", "atlas", ("droids/autogun", 6, "gethit"),
     "3d-render", "autogun turret shakes when hit (hovers around one state)"),
    ("frpg_lawnmower_attack", "freedroidrpg-data", "atlas", ("droids/lawnmower", 2, "attack"),
     "3d-render", "lawnmower droid attack (blades turn, crank-like)"),
    ("frpg_lawnmower_death", "freedroidrpg-data", "atlas", ("droids/lawnmower", 4, "death"),
     "3d-render", "lawnmower droid breaks down"),
    ("frpg_harvester_death", "freedroidrpg-data", "atlas", ("droids/harvester", 2, "death"),
     "3d-render", "harvester droid collapses"),
    ("frpg_harvester_attack", "freedroidrpg-data", "atlas", ("droids/harvester", 6, "attack"),
     "3d-render", "harvester droid strikes and draws back"),
    ("frpg_302_attack", "freedroidrpg-data", "atlas", ("droids/302", 6, "attack"), "3d-render",
     "droid 302 strikes (a fast action with few frames)"),
    ("frpg_blast_droid", "freedroidrpg-data", "blast", "iso_blast_droid", "3d-render",
     "droid explosion grows and fades"),
    ("frpg_blast_exterminator", "freedroidrpg-data", "blast", "iso_blast_exterminator",
     "3d-render", "exterminator blast grows and fades"),
    ("frpg_portrait_123_halfturn", "freedroidrpg-data", "portrait", ("droids/123", 1, 17),
     "3d-render", "rendered droid portrait turning half way round (turntable frames 1-17)"),
    ("frpg_portrait_999_halfturn", "freedroidrpg-data", "portrait", ("droids/999", 9, 25),
     "3d-render", "rendered droid portrait turning half way round (turntable frames 9-25)"),
    ("flare_dark_mist", "flare-game", "flare",
     ("empyrean_campaign/animations/powers/dark_mist.txt", "power", 0), "cartoon",
     "dark mist power: a cloud swirls up and disperses (play once)"),
    ("flare_lightning", "flare-game", "flare",
     ("fantasycore/animations/powers/lightning.txt", "power", 0), "cartoon",
     "lightning power: bolt flickers (stored frames of a back-and-forth animation)"),
    ("flare_wyvern_die", "flare-game", "flare",
     ("fantasycore/animations/enemies/wyvern.txt", "die", 6), "cartoon",
     "wyvern dies: wings beat and fold as it falls (8 frames)"),
    ("flare_minotaur_swing", "flare-game", "flare",
     ("fantasycore/animations/enemies/minotaur.txt", "swing", 2), "cartoon",
     "minotaur swings its axe (a fast attack with few frames)"),
    ("lincity_school_swing", "lincity-ng-data", "numbered", "school-swing", "cartoon",
     "school with a playground swing going out and back"),
    ("lincity_pottery", "lincity-ng-data", "numbered", "pottery", "cartoon",
     "pottery building animation"),
    ("lincity_firestation", "lincity-ng-data", "numbered", "firestation", "cartoon",
     "fire station animation (doors, engine)"),
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(pkg: str, cache: Path, packages: dict | None = None) -> Path:
    """Download (once), verify and unpack ``pkg`` (pinned in ``packages``, by default this
    set's :data:`PACKAGES`); the unpacked root."""
    version, digest, _ = (packages or PACKAGES)[pkg]
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{pkg}_*.deb"))
    deb = next((d for d in debs if sha256(d) == digest), None)
    if deb is None:
        subprocess.run(["apt-get", "download", f"{pkg}={version}"], cwd=cache, check=True)
        debs = sorted(cache.glob(f"{pkg}_*.deb"))
        deb = next((d for d in debs if sha256(d) == digest), None)
        if deb is None:
            sys.exit(f"{Path(sys.argv[0]).stem}: {pkg} {version}: no download matches the pinned "
                     "sha256")
    root = cache / f"{pkg}-{version}"
    if not root.is_dir():
        tmp = root.with_suffix(".part")
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        tmp.mkdir()
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(root)
    return root


def rgba(path: Path) -> Image.Image:
    return Image.open(path).convert("RGBA")


def composite(sprites: list[tuple[Image.Image, int, int]]) -> list[Image.Image]:
    """Sprites (image, x, y of its top-left corner relative to the anchor) on one white canvas
    holding them all, upscaled by an integer factor to at least 128 px on the longer side."""
    sprites = [s for s in sprites if s[0].getchannel("A").getextrema()[1] > 0]  # blank pads
    x0 = min(x for _, x, _ in sprites) - 4
    y0 = min(y for _, _, y in sprites) - 4
    x1 = max(x + im.width for im, x, _ in sprites) + 4
    y1 = max(y + im.height for im, _, y in sprites) + 4
    w, h = x1 - x0, y1 - y0
    scale = max(1, -(-128 // max(w, h)))
    out = []
    for im, x, y in sprites:
        canvas = Image.new("RGBA", (w, h), (255, 255, 255, 255))
        canvas.alpha_composite(im, (x - x0, y - y0))
        canvas = canvas.convert("RGB")
        if scale > 1:
            canvas = canvas.resize((w * scale, h * scale), Image.NEAREST)
        if out and np.array_equal(np.asarray(out[-1]), np.asarray(canvas)):
            continue  # a held frame: one copy
        out.append(canvas)
    return out


def atlas_clip(root: Path, spec) -> tuple[list[Image.Image], str]:
    folder, rot, anim = spec
    d = root / FRPG / folder
    sheets: dict[str, Image.Image] = {}
    frames = []
    sheet = None
    pat = re.compile(rf"enemy_rot_{rot:02d}_{anim}-(\d+)\.png (\d+) (\d+) (\d+) (\d+) "
                     r"off (-?\d+) (-?\d+)")
    for line in (d / "atlas.txt").read_text().splitlines():
        if line.startswith("*"):
            sheet = line.split()[1]
            continue
        m = pat.match(line)
        if m:
            if sheet not in sheets:
                sheets[sheet] = rgba(d / sheet)
            i, x, y, w, h, ox, oy = (int(v) for v in m.groups())
            frames.append((i, sheets[sheet].crop((x, y, x + w, y + h)), ox, oy))
    frames.sort(key=lambda f: f[0])
    return (composite([(im, ox, oy) for _, im, ox, oy in frames]),
            f"{FRPG}/{folder}/atlas.txt enemy_rot_{rot:02d}_{anim}-NN")


def blast_clip(root: Path, stem: str) -> tuple[list[Image.Image], str]:
    d = root / FRPG / "blasts"
    sprites = []
    for png in sorted(d.glob(f"{stem}_[0-9]*.png")):
        text = png.with_suffix(".offset").read_text()
        ox = int(re.search(r"OffsetX=(-?\d+)", text).group(1))
        oy = int(re.search(r"OffsetY=(-?\d+)", text).group(1))
        sprites.append((rgba(png), ox, oy))
    return composite(sprites), f"{FRPG}/blasts/{stem}_NNNN.png (+ .offset)"


def portrait_clip(root: Path, spec) -> tuple[list[Image.Image], str]:
    folder, first, last = spec
    d = root / FRPG / folder
    ims = [Image.open(d / f"portrait_{i:04d}.jpg").convert("RGB") for i in range(first, last + 1)]
    return ims, f"{FRPG}/{folder}/portrait_{first:04d}-{last:04d}.jpg"


def flare_clip(root: Path, spec) -> tuple[list[Image.Image], str]:
    rel, section, direction = spec
    text = (root / FLARE / rel).read_text().splitlines()
    mod = rel.split("/")[0]
    image = next(line.split("=", 1)[1] for line in text if line.startswith("image="))
    img = None
    for m in (mod, "fantasycore"):
        p = root / FLARE / m / image
        if p.is_file():
            img = rgba(p)
            break
    cur, frames = None, []
    for line in text:
        if line.startswith("["):
            cur = line.strip()[1:-1]
        elif cur == section and line.startswith("frame="):
            i, dr, x, y, w, h, ox, oy = (int(v) for v in line[6:].split(","))
            if dr == direction:
                frames.append((i, img.crop((x, y, x + w, y + h)), -ox, -oy))
    frames.sort(key=lambda f: f[0])
    return (composite([(im, ox, oy) for _, im, ox, oy in frames]),
            f"{FLARE}/{rel} [{section}] direction {direction} ({image})")


def numbered_clip(root: Path, stem: str) -> tuple[list[Image.Image], str]:
    d = root / LINCITY
    files = [p for p in d.glob(f"{stem}*.png") if re.fullmatch(rf"{re.escape(stem)}\d+", p.stem)]
    files.sort(key=lambda p: int(p.stem[len(stem):]))
    return composite([(rgba(p), 0, 0) for p in files]), f"{LINCITY}/{stem}N.png"


BUILDERS = {"atlas": atlas_clip, "blast": blast_clip, "portrait": portrait_clip,
            "flare": flare_clip, "numbered": numbered_clip}


def gray64(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L").resize((64, 64), Image.BILINEAR), dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write the clips into (must not exist)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "reseq-devset2",
                    help="where the .deb files are downloaded and unpacked")
    args = ap.parse_args()
    if args.out.exists():
        sys.exit(f"build_devset2: {args.out} exists; give a new folder")
    roots = {pkg: fetch(pkg, args.cache) for pkg in PACKAGES}
    args.out.mkdir(parents=True)
    rows = []
    for name, pkg, kind, spec, style, note in CLIPS:
        frames, where = BUILDERS[kind](roots[pkg], spec)
        g = [gray64(f) for f in frames]
        steps = [float(np.abs(a - b).mean()) for a, b in itertools.pairwise(g)]
        if float(np.abs(g[-1] - g[0]).mean()) < 0.5 * float(np.median(steps)):
            # ends on its first picture: no time-symmetric measure can tell it from its reverse
            keep = round(0.75 * len(frames))
            frames, g = frames[:keep], g[:keep]
            where += f" (frames 0-{keep - 1} of {len(steps) + 1}: it ends on its first frame)"
        cyclic = "yes" if kind == "numbered" else "no"  # LinCity tiles loop; the rest play once
        rows.append(write_clip(args.out, name, frames, g, pkg, PACKAGES[pkg], where, style,
                               cyclic, note))
    write_manifest(args.out, rows)


def write_clip(out: Path, name: str, frames: list[Image.Image], g: list[np.ndarray], pkg: str,
               pinned: tuple[str, str, str], where: str, style: str, cyclic: str,
               note: str) -> dict:
    """Write ``frames`` as ``out/name/NNNN.png``; the clip's manifest row (``g``: the frames at
    64 px gray, for the notes' median step and last-to-first difference)."""
    steps = [float(np.abs(a - b).mean()) for a, b in itertools.pairwise(g)]
    med = float(np.median(steps))
    back = float(np.abs(g[-1] - g[0]).mean())
    d = out / name
    d.mkdir()
    for i, f in enumerate(frames):
        f.save(d / f"{i:04d}.png")
    version, _, lic = pinned
    print(f"{name:30s} {len(frames):3d} frames {frames[0].width}x{frames[0].height} "
          f"cyclic={cyclic} (median step {med:.2f}, last-to-first {back:.2f})")
    return {"clip": name, "source_package": f"{pkg} (Debian)", "package_version": version,
            "path_inside_package": where, "license": lic, "style": style,
            "frames": len(frames), "width": frames[0].width, "height": frames[0].height,
            "cyclic": cyclic, "notes": f"{note}; median step {med:.2f}, last-to-first "
                                       f"{back:.2f} (mean abs gray diff, 64px)"}


def write_manifest(out: Path, rows: list[dict]) -> None:
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
