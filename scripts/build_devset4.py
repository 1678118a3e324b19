#!/usr/bin/env python3
"""Build the fourth development set: blind real clips from three more Debian game packages.

    python scripts/build_devset4.py OUT_DIR [--cache DIR]

Downloads three pinned Debian packages with ``apt-get download PKG=VERSION`` (run
``apt-get update`` first), checks each ``.deb`` against its pinned sha256, unpacks it with
``dpkg-deb -x`` and writes one folder of PNG frames per clip, in true order, into ``OUT_DIR``,
plus ``OUT_DIR/manifest.csv`` with the columns of ``../shared/dev-clips/manifest.csv``. None of
these packages is used by the first three sets. Like the third set, it is built *blind* for
issue 16: no ordering, distance matrix or objective was run on it while it was made, only
pictures and pixel statistics were looked at.

- ``hedgewars-data`` (cartoon sprites): the hedgehog taunts (``/rollup``, ``/sad``, ``/wave``,
  ...). The engine's ``Wavez`` table (``hedgewars/uVariables.pas``) gives each taunt's sprite
  and frame count, its ``SpritesData`` entry the frame size; frames are stacked top to bottom
  in a column, then the next column (as ``DrawSpriteRotatedF`` picks them), and a taunt is played
  once: ``Pos`` runs 0 .. FramesCount - 1, then the animation flag is cleared.
- ``widelands-data`` (pre-rendered 3D sprites): sprite-sheet animations of an ``init.lua``
  (``frames``, ``rows``, ``columns``; frame ``i`` at row ``i // columns``, column
  ``i % columns``, as ``SpriteSheetMipMapEntry::blit`` reads them), drawn at one hotspot. The
  soldiers' battle animations are shown once per battle round (``start_task_idle`` for 1000 ms;
  ``frames / fps`` is one second or more), a tree's ``falling`` once before it becomes a fallen
  tree (``play_once = true`` in the file), a ship's ``sinking`` once before it is removed.
- ``frozen-bubble-data`` (a pre-rendered 3D penguin): numbered frames ``NAME_p1_NNNN.png`` of one
  size; which numbers make which action is the game's ``%pinguin`` table (``bin/frozen-bubble``):
  from the rest frame 20, ``action`` 21-50 (then back to rest), ``left_to`` 19-2 then ``left`` 1,
  ``right_to`` 51-70 then ``right`` 71, ``wait_to`` 1-74 then the ``wait`` loop 75-97,
  ``lose_to`` 1-64 then the ``lose`` loop 65-158, the ``win`` loop 1-68. Long actions are taken
  every second frame.

Sprites go through ``build_devset2.composite`` (white canvas holding all frames at their anchor,
integer nearest-neighbour upscale to at least 128 px on the longer side, blank frames dropped,
holds kept once). A play-once clip is cut before the first picture that repeats an earlier one
(``build_devset3.cut_at_repeat``), and one that ends on its own first picture is cut at three
quarters of its length (docs/motion-objective.md). ``cyclic`` is ``yes`` for animations the game
plays as loops.

Needs numpy and Pillow (the reseq venv has both), ``apt-get`` and ``dpkg-deb``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_devset2 import composite, rgba
from build_devset3 import build

PACKAGES = {
    "hedgewars-data": ("1.0.2-6",
                       "722225903a72604403e6e0026e40e9a6953f47a74d94efc5f55504bc05bb4761",
                       "GPL-2 (Hedgewars; Debian copyright, Files: *)"),
    "widelands-data": ("2:1.1-3",
                       "0e23d645b15bcfb9e3bcae0de9bc1bdfa75a6ecb36b2e449759d6eb0b4bbd8fb",
                       "GPL-2+ (Widelands Development Team; Debian copyright, Files: *)"),
    "frozen-bubble-data": ("2.212-11",
                           "39cdfd07d9532d1558762cf265a844d09015c4540568573c50f444cc084166e0",
                           "GPL-2 (The Frozen-Bubble Team; Debian copyright, Files: *)"),
}

HW = "usr/share/games/hedgewars/Data/Graphics/Hedgehog"
WL = "usr/share/games/widelands/data"
FB = "usr/share/games/frozen-bubble/gfx/pinguins"

# Hedgewars taunts: sprite file, frame width and height (SpritesData), FramesCount (Wavez)
TAUNTS = {
    "rollup": ("Kowtow", 32, 32, 12), "sad": ("Sad", 32, 32, 14), "wave": ("Wave", 64, 32, 16),
    "hurrah": ("Hurrah", 32, 32, 14), "lemonade": ("ILoveLemonade", 128, 32, 24),
    "shrug": ("Shrug", 32, 32, 24), "juggle": ("Juggle", 32, 32, 49),
}


def _soldier(tribe, anim, note, kind="hard"):
    return (f"wl_{tribe}_soldier_{anim}", "widelands-data", "sheet",
            (f"tribes/workers/{tribe}/soldier", anim), "3d-render", "no", f"{kind}, {note}")


# (clip, package, builder, spec, style, cyclic, note)
CLIPS = [
    ("hw_wave", "hedgewars-data", "taunt", "wave", "cartoon", "no",
     "hard, comes back on itself: a hedgehog raises a hand and waves it (/wave)"),
    ("hw_shrug", "hedgewars-data", "taunt", "shrug", "cartoon", "no",
     "hard, a turn of less than a full turn: a hedgehog turns from the side to the front and "
     "shrugs (/shrug)"),
    ("hw_juggle", "hedgewars-data", "taunt", "juggle", "cartoon", "no",
     "hard, hovers: a hedgehog turns to the front and juggles three balls (/juggle)"),
    # Widelands soldiers' battle animations (east-facing): attack that hits, a dodge, a hit taken
    _soldier("barbarians", "atk_ok_e", "fast action with few frames: a barbarian soldier swings "
             "his axe at an opponent and draws back"),
    _soldier("barbarians", "eva_ok_e", "comes back on itself: a barbarian soldier ducks an "
             "attack and rises again"),
    _soldier("barbarians", "eva_fail_e", "fast action with few frames: a barbarian soldier is "
             "hit and recoils"),
    _soldier("barbarians", "atk_fail_e", "fast action with few frames: a barbarian soldier "
             "leaps at an opponent, misses and lands flat"),
    _soldier("barbarians", "die_e", "death: a barbarian soldier drops his weapons and fades "
             "away", kind="easy"),
    _soldier("empire", "atk_ok_e", "fast action with few frames: an imperial soldier thrusts "
             "his weapon and draws back"),
    _soldier("empire", "eva_ok_e", "comes back on itself: an imperial soldier dodges an attack "
             "and straightens up"),
    _soldier("empire", "eva_fail_e", "fast action with few frames: an imperial soldier is hit "
             "and recoils"),
    _soldier("empire", "atk_fail_e", "fast action with few frames: an imperial soldier thrusts "
             "and misses"),
    _soldier("empire", "die_e", "death: an imperial soldier drops shield and spear and fades "
             "away", kind="easy"),
    _soldier("atlanteans", "atk_ok_e", "fast action with few frames: an atlantean soldier "
             "lunges and draws back"),
    _soldier("atlanteans", "eva_ok_e", "comes back on itself: an atlantean soldier dodges an "
             "attack and returns"),
    _soldier("atlanteans", "eva_fail_e", "fast action with few frames: an atlantean soldier is "
             "hit and recoils"),
    _soldier("atlanteans", "atk_fail_e", "fast action with few frames: an atlantean soldier "
             "lunges and misses"),
    _soldier("atlanteans", "die_e", "death: an atlantean soldier drops helmet, trident and "
             "shield", kind="easy"),
    _soldier("frisians", "atk_ok_1_e", "fast action with few frames: a frisian soldier strikes "
             "and draws back"),
    _soldier("frisians", "eva_ok_e", "comes back on itself: a frisian soldier dodges an attack "
             "and returns"),
    _soldier("frisians", "eva_fail_e", "fast action with few frames: a frisian soldier is hit "
             "and recoils"),
    _soldier("frisians", "die_e", "death: a frisian soldier falls flat and fades away",
             kind="easy"),
    _soldier("amazons", "atk_ok_e", "fast action: an amazon soldier strikes and draws back"),
    _soldier("amazons", "eva_ok_e", "a swing: an amazon soldier ducks aside, her cloak "
             "swinging out"),
    _soldier("amazons", "eva_fail_e", "hovers: an amazon soldier is hit and sways"),
    _soldier("amazons", "die_e", "death: an amazon soldier raises her spear and fades away",
             kind="easy"),
    ("wl_aspen_falling", "widelands-data", "sheet", ("world/immovables/trees/aspen/old",
                                                    "falling"), "3d-render", "no",
     "easy, moves steadily one way: an aspen tree falls (play_once)"),
    ("wl_oak_falling", "widelands-data", "sheet", ("world/immovables/trees/oak/old", "falling"),
     "3d-render", "no", "easy, moves steadily one way: an oak tree falls (play_once)"),
    ("wl_atlanteans_ship_sinking", "widelands-data", "sheet",
     ("tribes/ships/atlanteans", "sinking"), "3d-render", "no",
     "easy: an atlantean ship sinks"),
    ("wl_frisians_ship_sinking", "widelands-data", "sheet", ("tribes/ships/frisians", "sinking"),
     "3d-render", "no", "easy: a frisian ship sinks"),
    # Frozen Bubble penguin: (file prefix, frame numbers in playing order, every n-th)
    ("fb_shoot", "frozen-bubble-data", "penguin", ("anime-shooter", range(21, 51), 1), "3d-render",
     "no", "hard, comes back on itself: the penguin pushes the launcher's lever to shoot and "
     "lets it go back"),
    ("fb_lever_left", "frozen-bubble-data", "penguin",
     ("anime-shooter", range(20, 0, -1), 1), "3d-render", "no",
     "easy, moves steadily one way: the penguin turns the lever from rest to the left"),
    ("fb_lever_right", "frozen-bubble-data", "penguin",
     ("anime-shooter", [20, *range(51, 72)], 1), "3d-render", "no",
     "easy, moves steadily one way: the penguin turns the lever from rest to the right"),
    ("fb_wait", "frozen-bubble-data", "penguin", ("wait", range(1, 75), 2), "3d-render", "no",
     "hard, looks round: the idle penguin looks about, blinks and taps a foot (wait_to, "
     "frames 1-74 every 2)"),
    ("fb_lose", "frozen-bubble-data", "penguin", ("loose", range(1, 65), 2), "3d-render", "no",
     "easy: the penguin loses, is startled and slumps over (frames 1-64 every 2)"),
    # loops (skipped by the protocol)
    ("cyc_fb_wait", "frozen-bubble-data", "penguin", ("wait", range(75, 98), 1), "3d-render",
     "yes", "loop, hovers: the waiting penguin rolls its eyes and taps a foot"),
    ("cyc_fb_win", "frozen-bubble-data", "penguin", ("win", range(1, 69), 2), "3d-render", "yes",
     "loop: the penguin celebrates (frames 1-68 every 2)"),
    ("cyc_wl_barbarians_soldier_idle", "widelands-data", "sheet",
     ("tribes/workers/barbarians/soldier", "idle"), "3d-render", "yes",
     "loop, hovers: a barbarian soldier stands and fidgets"),
    ("cyc_wl_destroyed_building_fire", "widelands-data", "sheet",
     ("tribes/immovables/destroyed_building", "idle"), "3d-render", "yes",
     "loop, hovers (flicker): a destroyed building burns (animate=idle duration:30s)"),
]


# --- Hedgewars ---------------------------------------------------------------------------

def taunt_clip(root: Path, taunt: str):
    name, w, h, count = TAUNTS[taunt]
    sheet = rgba(root / HW / f"{name}.png")
    per_column = sheet.height // h
    sprites = []
    for i in range(count):  # column-major: down a column, then the next column
        x, y = (i // per_column) * w, (i % per_column) * h
        sprites.append((sheet.crop((x, y, x + w, y + h)), 0, 0))
    return composite(sprites), (f"{HW}/{name}.png, {count} frames of {w}x{h} column by column "
                                f"(taunt /{taunt})")


# --- Widelands ---------------------------------------------------------------------------

def _lua_block(text: str, name: str) -> str:
    """The body of the first ``name = { ... }`` table in ``text`` that has ``frames``."""
    text = re.sub(r"--[^\n]*", "", text)
    for m in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*=\s*\{{", text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body = text[m.end():i - 1]
        if re.search(r"\bframes\s*=", body):
            return body
    raise KeyError(name)


def sheet_clip(root: Path, spec):
    rel, anim = spec
    d = root / WL / rel
    body = _lua_block((d / "init.lua").read_text(), anim)
    frames, rows, cols = (int(re.search(rf"\b{k}\s*=\s*(\d+)", body).group(1))
                          for k in ("frames", "rows", "columns"))
    base = re.search(r'\bbasename\s*=\s*"([^"]+)"', body)
    sub = re.search(r'\bdirectory\s*=\s*dirname\s*\.\.\s*"([^"]+)"', body)
    file = f"{sub.group(1) + '/' if sub else ''}{base.group(1) if base else anim}_1.png"
    sheet = rgba(d / file)
    w, h = sheet.width // cols, sheet.height // rows
    sprites = []
    for i in range(frames):  # row-major
        x, y = (i % cols) * w, (i // cols) * h
        sprites.append((sheet.crop((x, y, x + w, y + h)), 0, 0))  # one hotspot
    return composite(sprites), (f"{WL}/{rel}/{file} ({anim}: {frames} frames, {rows} rows x "
                                f"{cols} columns, row by row)")


# --- Frozen Bubble -----------------------------------------------------------------------

def _runs(numbers: list[int]) -> str:
    """``[20, 51, 52, 53]`` as ``"20, 51-53"`` (runs going up or down by one)."""
    runs: list[list[int]] = []  # [first, last]
    for n in numbers:
        r = runs[-1] if runs else None
        if r and abs(n - r[1]) == 1 and (r[0] == r[1] or n - r[1] == (r[1] > r[0]) * 2 - 1):
            r[1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def penguin_clip(root: Path, spec):
    prefix, numbers, step = spec
    numbers = list(numbers)
    sprites = [(rgba(root / FB / f"{prefix}_p1_{n:04d}.png"), 0, 0) for n in numbers[::step]]
    every = f" every {step}" if step > 1 else ""
    return composite(sprites), (f"{FB}/{prefix}_p1_NNNN.png frames {_runs(numbers)}{every} "
                                f"({len(sprites)} pictures)")


BUILDERS = {"taunt": taunt_clip, "sheet": sheet_clip, "penguin": penguin_clip}


def main() -> None:
    build("build_devset4", __doc__, PACKAGES, CLIPS, BUILDERS, "reseq-devset4")


if __name__ == "__main__":
    main()
