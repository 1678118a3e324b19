"""reseq.frames on real data: every source kind, colour modes, sizes, labels, broken inputs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reseq.errors import ReseqError
from reseq.frames import (
    REDUCING_GAP,
    Frames,
    frame_index,
    load_frames,
    natural_key,
    parse_size,
)

BG = (0, 128, 255)  # a background no frame here contains in bulk
LANCZOS = Image.Resampling.LANCZOS


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _composite(rgba: np.ndarray, bg=BG) -> np.ndarray:
    a = rgba[..., 3:].astype(np.float64) / 255
    return np.rint(rgba[..., :3] * a + np.asarray(bg) * (1 - a)).astype(np.uint8)


def _robot_sprites(kenney_dir: Path) -> list[Image.Image]:
    return [Image.open(kenney_dir / "robot" / f"robot_walk{i}.png").convert("RGBA")
            for i in range(8)]


@pytest.fixture(scope="module")
def bunny32(bunny_video) -> Frames:
    """All 132 frames of the bunny video at long edge 32 (sequential decode: the reference)."""
    return load_frames(bunny_video, size=32, progress=False)


# --------------------------------------------------------------------------- folders


def test_folder_of_real_frames(dev_clips, clip_frames):
    folder = dev_clips / "cyc_kenney_robot_walk"
    f = clip_frames("cyc_kenney_robot_walk", 64)
    assert f.array.shape == (8, 64, 48, 3) and f.array.dtype == np.uint8
    assert f.labels == [f"{i:04d}.png" for i in range(8)] and f.source == str(folder)
    ref = Image.open(folder / "0003.png").convert("RGB").resize((48, 64), LANCZOS,
                                                                reducing_gap=REDUCING_GAP)
    assert np.array_equal(f.array[3], np.asarray(ref))
    native = load_frames(folder, size="native", progress=False)
    assert native.array.shape == (8, 128, 96, 3)
    assert all(np.array_equal(native.array[i], _rgb(folder / f"{i:04d}.png")) for i in range(8))
    assert all(np.abs(np.diff(native.array.astype(int), axis=0)).sum(axis=(1, 2, 3)) > 0)
    up = load_frames(folder, size=256, progress=False)  # long edge up-scaled as well
    assert up.size == (192, 256)


def test_natural_order_every_max_and_skipped_files(dev_clips, tmp_path):
    src = sorted((dev_clips / "r3d_bigbuckbunny").glob("*.png"))[:12]
    for i in [7, 0, 11, 3, 9, 1, 5, 10, 2, 8, 4, 6]:  # creation order is irrelevant
        shutil.copy(src[i], tmp_path / f"{i + 1}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    with pytest.warns(UserWarning, match=r"skipped 1 non-image file\(s\): notes\.txt"):
        f = load_frames(tmp_path, size=None, progress=False)
    assert f.labels == [f"{i}.png" for i in range(1, 13)]  # 2.png before 10.png
    assert all(np.array_equal(f.array[i], _rgb(src[i])) for i in range(12))
    with pytest.warns(UserWarning):
        g = load_frames(tmp_path, size=None, every=3, max_frames=3, progress=False)
    assert g.labels == ["1.png", "4.png", "7.png"]
    assert np.array_equal(g.array, f.array[[0, 3, 6]])


def test_mixed_sizes_are_letterboxed_to_the_first(dev_clips, tmp_path):
    robot = dev_clips / "cyc_kenney_robot_walk"
    shutil.copy(robot / "0000.png", tmp_path / "a.png")  # 96x128 portrait: sets 48x64
    shutil.copy(dev_clips / "r3d_bigbuckbunny" / "0000.png", tmp_path / "b.png")  # 320x180
    shutil.copy(robot / "0001.png", tmp_path / "c.png")
    magenta = (255, 0, 255)
    f = load_frames(tmp_path, size=64, background=magenta, progress=False)
    assert f.array.shape == (3, 64, 48, 3)
    assert f.native_sizes == [(96, 128), (320, 180), (96, 128)]
    # b: fit inside 48x64 -> 48x27, centred vertically: 18 rows of background above and 19 below
    b = f.array[1]
    assert (b[:18] == magenta).all() and (b[45:] == magenta).all()
    inner = Image.open(tmp_path / "b.png").convert("RGB").resize((48, 27), LANCZOS,
                                                                 reducing_gap=REDUCING_GAP)
    assert np.array_equal(b[18:45], np.asarray(inner))
    ref_c = Image.open(tmp_path / "c.png").convert("RGB").resize((48, 64), LANCZOS,
                                                                 reducing_gap=REDUCING_GAP)
    assert np.array_equal(f.array[2], np.asarray(ref_c))


def test_rgba_sprites_on_background(kenney_dir):
    folder = kenney_dir / "robot"
    f = load_frames(folder, size=None, background=BG, progress=False)
    assert len(f) == 13 and f.labels[0] == "robot_climb0.png" and f.labels[-1] == "robot_walk7.png"
    for i, label in enumerate(f.labels):
        rgba = np.asarray(Image.open(folder / label).convert("RGBA"))
        assert np.abs(f.array[i].astype(int) - _composite(rgba)).max() <= 1
        assert (f.array[i][rgba[..., 3] == 0] == BG).all()
    white = load_frames("sample:kenney-robot", size=None, progress=False)
    assert white.source == "sample:kenney-robot"
    assert (white.array[:, 0, 0] == 255).all() and np.array_equal(white.labels, f.labels)


def test_folder_of_folders(kenney_dir):
    f = load_frames(kenney_dir, size=32, progress=False)
    assert len(f) == 6 * 13
    assert f.labels[0] == "female_adventurer/femaleAdventurer_climb0.png"
    assert f.labels[-1] == "zombie/zombie_walk7.png"
    assert f.array.shape[1:] == (32, 24, 3)


def test_16bit_grayscale_la_and_palette(dev_clips, tmp_path):
    frame = Image.open(dev_clips / "r3d_bigbuckbunny" / "0010.png").convert("RGB")
    gray = np.asarray(frame.convert("L")).astype(np.uint16)
    rng = np.random.default_rng(0)
    g16 = gray * 256 + rng.integers(0, 256, gray.shape, dtype=np.uint16)  # uses all 16 bits
    Image.fromarray(g16).save(tmp_path / "00_gray16.png")
    assert Image.open(tmp_path / "00_gray16.png").mode in ("I;16", "I")
    pal = frame.quantize(48)
    pal.save(tmp_path / "01_palette.png")
    la = Image.merge("LA", [frame.convert("L"), Image.fromarray(
        np.tile(np.linspace(0, 255, frame.width).astype(np.uint8), (frame.height, 1)))])
    la.save(tmp_path / "02_gray_alpha.png")
    frame.save(tmp_path / "03_tiff.tif")
    frame.save(tmp_path / "04_bmp.bmp")
    frame.save(tmp_path / "05_jpeg.jpg", quality=95)
    frame.save(tmp_path / "06_webp.webp", lossless=True)
    f = load_frames(tmp_path, size=None, background=BG, progress=False)
    assert len(f) == 7
    expect16 = np.clip(np.rint(g16 / 257.0), 0, 255).astype(np.uint8)
    assert np.abs(f.array[0].astype(int) - expect16[..., None]).max() <= 1  # scaled, not clipped
    assert np.array_equal(f.array[1], np.asarray(pal.convert("RGB")))
    assert np.abs(f.array[2].astype(int) - _composite(np.asarray(la.convert("RGBA")))).max() <= 1
    for i in (3, 4, 6):
        assert np.array_equal(f.array[i], np.asarray(frame))
    assert np.abs(f.array[5].astype(int) - np.asarray(frame)).mean() < 3


# --------------------------------------------------------------------------- video


def test_video_all_frames_and_labels(bunny32, bunny_video):
    assert len(bunny32) == 132 and bunny32.size == (32, 18)
    assert bunny32.labels[0] == "frame 0 @ 0.000s" and bunny32.labels[120] == "frame 120 @ 4.800s"
    assert bunny32.native_sizes[0] == (1280, 720)
    assert bunny32.source == str(bunny_video)


def test_video_every_start_end_max(bunny32, bunny_video):
    a = load_frames(bunny_video, size=32, every=5, max_frames=10, progress=False)
    assert a.labels == bunny32.labels[0:50:5]
    assert np.array_equal(a.array, bunny32.array[0:50:5])
    # start seeks; labels and pixels still match the sequential decode
    b = load_frames(bunny_video, size=32, every=2, start=2.0, end=3.0, progress=False)
    assert b.labels == bunny32.labels[50:75:2] and b.labels[0] == "frame 50 @ 2.000s"
    assert np.array_equal(b.array, bunny32.array[50:75:2])
    c = load_frames(bunny_video, size=32, end=1.0, progress=False)
    assert len(c) == 25
    d = load_frames("sample:bunny", size=32, start=5.0, progress=False)
    assert d.labels == bunny32.labels[125:] and d.source == "sample:bunny"
    with pytest.raises(ReseqError, match=r"end .* must be after start"):
        load_frames(bunny_video, start=3, end=2)
    with pytest.raises(ReseqError, match="need at least 2 frames"):
        load_frames(bunny_video, size=32, start=5.23, progress=False)
    with pytest.raises(ReseqError, match="every must be a positive integer"):
        load_frames(bunny_video, every=0)


def test_truncated_videos(bunny_video, bunny32, tmp_path):
    data = bunny_video.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])  # index (moov) is at the end: undecodable
    with pytest.raises(ReseqError, match=r"cannot read .*half\.mp4 as a video"):
        load_frames(half)
    # Remuxed with the index first: the first half still decodes; kept with a warning.
    import av

    fast = tmp_path / "faststart.mp4"
    with av.open(str(bunny_video)) as inp, av.open(str(fast), "w",
                                                    options={"movflags": "faststart"}) as out:
        ist = inp.streams.video[0]
        ost = out.add_stream_from_template(ist)
        for pkt in inp.demux(ist):
            if pkt.dts is not None:
                pkt.stream = ost
                out.mux(pkt)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size // 2])
    with pytest.warns(UserWarning, match="truncated"):
        f = load_frames(cut, size=32, progress=False)
    assert 10 < len(f) < 132
    assert np.array_equal(f.array, bunny32.array[: len(f)])


# --------------------------------------------------------------------------- animated images


def _palette_frames(images: list[Image.Image], transparent: bool) -> list[Image.Image]:
    """Quantize to one shared palette (index 255 = transparent), so a GIF stores them exactly."""
    montage = Image.new("RGB", (sum(im.width for im in images), images[0].height))
    x = 0
    for im in images:
        montage.paste(im.convert("RGB"), (x, 0))
        x += im.width
    ref = montage.quantize(255, dither=Image.Dither.NONE)
    out = []
    for im in images:
        p = im.convert("RGB").quantize(palette=ref, dither=Image.Dither.NONE)
        idx = np.asarray(p).copy()
        if transparent:
            idx[np.asarray(im.convert("RGBA"))[..., 3] < 128] = 255
        q = Image.fromarray(idx, "P")
        q.putpalette([*ref.getpalette()[: 255 * 3], 0, 0, 0])
        out.append(q)
    return out


def test_gif_from_real_frames(dev_clips, tmp_path):
    src = [Image.open(p) for p in sorted((dev_clips / "cyc_wes_flames").glob("*.png"))]
    pframes = _palette_frames(src, transparent=False)
    path = tmp_path / "flames.gif"
    pframes[0].save(path, save_all=True, append_images=pframes[1:], duration=80, loop=0)
    f = load_frames(path, size=None, progress=False)
    assert len(f) == len(src) == 15
    assert f.labels[:3] == ["frame 0 @ 0.000s", "frame 1 @ 0.080s", "frame 2 @ 0.160s"]
    for i, p in enumerate(pframes):  # GIF stores delta frames: decoding must compose them
        assert np.array_equal(f.array[i], np.asarray(p.convert("RGB"))), i
    g = load_frames(path, size=72, every=2, max_frames=4, progress=False)
    assert g.labels == [f.labels[i] for i in (0, 2, 4, 6)] and g.size == (72, 72)


def test_gif_transparency_and_disposal(kenney_dir, tmp_path):
    pframes = _palette_frames(_robot_sprites(kenney_dir), transparent=True)

    def shown(p):
        rgb = np.asarray(p.convert("RGB")).copy()
        return rgb, np.asarray(p) == 255

    for disposal in (2, 1):
        path = tmp_path / f"robot_d{disposal}.gif"
        pframes[0].save(path, save_all=True, append_images=pframes[1:], duration=100,
                        loop=0, disposal=disposal, transparency=255)
        f = load_frames(path, size=None, background=BG, progress=False)
        assert len(f) == 8
        canvas = np.empty_like(f.array[0])
        canvas[:] = BG
        for i, p in enumerate(pframes):
            rgb, clear = shown(p)
            if disposal == 2:  # restore to background: each frame alone on the background
                expect = np.where(clear[..., None], np.asarray(BG, np.uint8), rgb)
            else:  # do not dispose: transparent pixels show the frames before
                expect = np.where(clear[..., None], canvas, rgb)
                canvas = expect
            assert np.array_equal(f.array[i], expect), (disposal, i)
        if disposal == 1:  # accumulation really happened (the sprites move)
            assert (f.array[7] != BG).any(axis=-1).sum() > (f.array[0] != BG).any(axis=-1).sum()


@pytest.mark.parametrize("disposal, blend", [(0, 0), (1, 1), (2, 1)])
def test_apng_disposal_and_alpha_blending(kenney_dir, dev_clips, tmp_path, disposal, blend):
    # An opaque real frame, then semi-transparent-edged sprites.
    first = Image.open(dev_clips / "cyc_kenney_robot_walk" / "0000.png").convert("RGBA")
    frames = [first, *_robot_sprites(kenney_dir)[1:]]
    path = tmp_path / "robot.png"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   disposal=disposal, blend=blend)
    f = load_frames(path, size=None, background=BG, progress=False)
    assert len(f) == 8 and f.labels[7] == "frame 7 @ 0.700s"
    for i, im in enumerate(frames):
        assert np.abs(f.array[i].astype(int) - _composite(np.asarray(im))).max() <= 1, i


def test_animated_webp(kenney_dir, dev_clips, tmp_path):
    sprites = _robot_sprites(kenney_dir)
    path = tmp_path / "robot.webp"
    sprites[0].save(path, save_all=True, append_images=sprites[1:], duration=100, lossless=True)
    f = load_frames(path, size=None, background=BG, progress=False)
    assert f.labels[1] == "frame 1 @ 0.100s"
    for i, im in enumerate(sprites):
        assert np.abs(f.array[i].astype(int) - _composite(np.asarray(im))).max() <= 1, i
    src = [Image.open(p) for p in sorted((dev_clips / "r3d_xinelogo").glob("*.png"))[:6]]
    opaque = tmp_path / "logo.webp"
    src[0].save(opaque, save_all=True, append_images=src[1:], duration=40, lossless=True)
    g = load_frames(opaque, size=None, progress=False)
    assert all(np.array_equal(g.array[i], np.asarray(src[i].convert("RGB"))) for i in range(6))


# --------------------------------------------------------------------------- broken inputs


@pytest.fixture
def broken(tmp_path, dev_clips, bunny_video) -> dict[str, tuple[Path, str]]:
    """name -> (path, regex the one-line error must match)."""
    frame = dev_clips / "cyc_kenney_robot_walk" / "0000.png"
    empty = tmp_path / "empty"
    empty.mkdir()
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(frame, one / "0000.png")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "0000.png").write_bytes(frame.read_bytes()[:200])
    half = tmp_path / "half.mp4"
    data = bunny_video.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    text = tmp_path / "manifest.dat"
    shutil.copy(dev_clips / "manifest.csv", text)
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(frame.read_bytes()[:100])
    return {
        "missing": (tmp_path / "nosuch", "does not exist"),
        "empty folder": (empty, "contains no images"),
        "one image": (one, "only one readable image"),
        "single image file": (frame, "is a single image; need at least 2 frames"),
        "corrupt only content": (corrupt, r"no readable images \(1 unreadable: 0000\.png\)"),
        "corrupt file": (bad_png, "cannot read .*bad.png as an image"),
        "truncated video": (half, "as a video: .*truncated, corrupt or not a video"),
        "unknown format": (text, "not a video, animated image or image format"),
    }


def test_broken_inputs_api(broken):
    for name, (path, pattern) in broken.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ReseqError, match=pattern) as info:
                load_frames(path, progress=False)
        assert "\n" not in str(info.value), name


def test_broken_inputs_cli(broken, run_cli):
    for name, (path, pattern) in broken.items():
        out = run_cli("frames", path)
        assert out.returncode == 2, (name, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        lines = [ln for ln in out.stderr.splitlines() if ln.startswith("reseq:")]
        assert len(lines) == 1 and lines[0].startswith("reseq: error: "), (name, out.stderr)
        assert re.search(pattern, lines[0]), (name, lines[0])


def test_corrupt_file_among_good_ones_is_skipped(dev_clips, tmp_path):
    for i in range(3):
        shutil.copy(dev_clips / "cyc_kenney_robot_walk" / f"{i:04d}.png", tmp_path / f"{i}.png")
    (tmp_path / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\): 3\.png"):
        f = load_frames(tmp_path, size=32, progress=False)
    assert f.labels == ["0.png", "1.png", "2.png"]


def test_unreadable_paths(dev_clips, tmp_path, run_cli, unprivileged):
    locked = tmp_path / "locked"
    locked.mkdir()
    for i in range(3):
        shutil.copy(dev_clips / "cyc_kenney_robot_walk" / f"{i:04d}.png", locked / f"{i}.png")
    video = tmp_path / "clip.gif"
    sprites = [Image.open(p) for p in sorted((dev_clips / "cyc_wes_flames").glob("*.png"))[:3]]
    sprites[0].save(video, save_all=True, append_images=sprites[1:])
    locked_file = tmp_path / "locked.gif"
    shutil.copy(video, locked_file)
    os.chmod(locked, 0o000)
    os.chmod(locked_file, 0o000)
    script = ("import sys\nfrom reseq.frames import load_frames\nfrom reseq.errors import "
              "ReseqError\ntry:\n    load_frames(sys.argv[1], progress=False)\nexcept ReseqError "
              "as e:\n    print('ReseqError:', e)\n")
    try:
        for path in (locked, locked_file):
            api = subprocess.run([*unprivileged, sys.executable, "-c", script, str(path)],
                                 capture_output=True, text=True, timeout=120, check=False)
            assert api.stdout.startswith("ReseqError: cannot read") and "permission denied" in \
                api.stdout, api.stdout + api.stderr
            cli = run_cli("frames", path, unprivileged=True, timeout=120)
            assert cli.returncode == 2 and "Traceback" not in cli.stderr
            lines = cli.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("reseq: error: cannot read")
            assert str(path) in lines[0] and lines[0].endswith("permission denied")
    finally:
        os.chmod(locked, 0o755)
        os.chmod(locked_file, 0o644)


# --------------------------------------------------------------------------- API details


def test_frames_indexing(clip_frames):
    f = clip_frames("cyc_kenney_robot_walk", 32)
    assert len(f[3]) == 1 and f[3].labels == ["0003.png"] and f[-1].labels == ["0007.png"]
    assert f[2:5].labels == ["0002.png", "0003.png", "0004.png"]
    sub = f[np.array([5, 0])]
    assert sub.labels == ["0005.png", "0000.png"] and np.array_equal(sub.array[1], f.array[0])
    mask = np.zeros(len(f), bool)
    mask[[1, 6]] = True
    assert f[mask].labels == ["0001.png", "0006.png"] and f[mask].source == f.source
    with pytest.raises(IndexError):
        f[8]
    with pytest.raises(ValueError, match="labels"):
        Frames(f.array, f.labels[:-1], "x")


def test_frame_index(clip_frames, bunny32, kenney_dir):
    f = clip_frames("cyc_kenney_robot_walk", 32)
    assert frame_index(f, "0003.png") == 3 and frame_index(f, "0003") == 3
    assert frame_index(f, "5") == 5 and frame_index(f, "-1") == 7 and frame_index(f, 2) == 2
    with pytest.raises(ReseqError, match="no frame named 'walk9'"):
        frame_index(f, "walk9")
    with pytest.raises(ReseqError, match="out of range"):
        frame_index(f, "8")
    assert frame_index(bunny32, "frame 120") == 120
    assert frame_index(bunny32, "frame 120 @ 4.800s") == 120
    names = ["1.png", "2.png", "12.png"] + [f"{i}.png" for i in range(20, 30)]
    assert frame_index(names, "12") == 2  # a name wins over the index 12
    with pytest.raises(ReseqError, match="ambiguous"):
        frame_index(["a.png", "a.jpg", "b.png"], "a")
    k = load_frames(kenney_dir, size=16, progress=False)
    assert k.labels[frame_index(k, "robot_walk3")] == "robot/robot_walk3.png"


def test_parse_size_and_natural_key():
    assert parse_size("native") is None and parse_size("None") is None
    assert parse_size("128") == 128 and parse_size(64) == 64
    for bad in ("0", "-3", "big", "1.5"):
        with pytest.raises(ReseqError, match="--size"):
            parse_size(bad)
    names = ["frame10.png", "frame9.png", "Frame1.png", "frame_2.png", "10.png", "9.png"]
    assert sorted(names, key=natural_key) == ["9.png", "10.png", "Frame1.png", "frame9.png",
                                              "frame10.png", "frame_2.png"]


def test_cli_frames_summary(run_cli, dev_clips):
    out = run_cli("frames", dev_clips / "cyc_kenney_robot_walk", "--size", "native", "--every", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"4 frames from {dev_clips / 'cyc_kenney_robot_walk'}",
        "working size 96x128 (native 96x128)",
        "first '0000.png', last '0006.png'",
    ]
    out = run_cli("frames", "sample:bunny", "--size", "64", "--start", "1", "--end", "2",
                  "--every", "5")
    assert out.returncode == 0, out.stderr
    assert "5 frames from sample:bunny" in out.stdout and "working size 64x36" in out.stdout
    assert "first 'frame 25 @ 1.000s', last 'frame 45 @ 1.800s'" in out.stdout
