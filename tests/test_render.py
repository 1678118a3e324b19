"""Writers and pictures of reseq.render, on real dev-clip frames, read back with PyAV/Pillow."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from reseq.errors import ReseqError
from reseq.render import (
    contact_sheet,
    mst_plot,
    outlier_histogram,
    output_kind,
    write_sequence,
)

CLIPS = Path(__file__).resolve().parents[1] / ".." / "shared" / "dev-clips"


def _clip(name: str, count: int | None = None) -> tuple[np.ndarray, list[str]]:
    files = sorted((CLIPS / name).glob("*.png"))[:count]
    if not files:
        pytest.skip(f"dev clip {name} not available")
    return np.stack([np.array(Image.open(f).convert("RGB")) for f in files]), [f.name for f in files]


@pytest.fixture(scope="module")
def robot():
    return _clip("cyc_kenney_robot_walk")  # 8 frames, 128 x 96


@pytest.fixture(scope="module")
def pingus():
    return _clip("cyc_pingus_walker")  # 8 frames, 128 x 128, < 256 colours


@pytest.fixture(scope="module")
def bunny():
    return _clip("r3d_bigbuckbunny", 20)  # 180 x 320 video frames


def _steps(images: np.ndarray) -> list[float | None]:
    x = images.reshape(len(images), -1).astype(float)
    return [float(np.abs(x[i] - x[i + 1]).mean()) for i in range(len(x) - 1)] + [None]


def _decode(path: Path) -> tuple[av.video.stream.VideoStream, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        info = (stream.codec_context.name, stream.codec_context.pix_fmt, stream.average_rate,
                stream.width, stream.height)
    return info, frames


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def test_output_kind():
    assert output_kind("x/out.MP4") == "mp4"
    assert output_kind("x.gif") == "gif"
    assert output_kind("frames/") == "png"
    with pytest.raises(ReseqError, match="mp4"):
        output_kind("out.avi")


def test_mp4_reads_back(tmp_path, bunny):
    images, labels = bunny
    out = tmp_path / "bunny.mp4"
    assert write_sequence(out, images, labels, _steps(images), fps=12.5) == [out]
    (codec, pix_fmt, rate, w, h), decoded = _decode(out)
    assert (codec, pix_fmt, w, h) == ("h264", "yuv420p", 320, 180)
    assert rate == Fraction(25, 2)
    assert len(decoded) == len(images)
    # every decoded frame is closest to the frame written in that position
    src = images.reshape(len(images), -1).astype(float)
    for i, frame in enumerate(decoded):
        err = np.abs(src - frame.reshape(1, -1)).mean(axis=1)
        assert err.argmin() == i and err[i] < 4.0
    assert _no_temp_files(tmp_path)


def test_mp4_odd_size_is_padded(tmp_path, robot):
    images, labels = robot
    odd = np.ascontiguousarray(images[:, :127, :95])
    out = tmp_path / "odd.mp4"
    write_sequence(out, odd, labels, _steps(odd), fps=8)
    (_, _, rate, w, h), decoded = _decode(out)
    assert (w, h) == (96, 128) and rate == 8 and len(decoded) == 8
    # the padding repeats the last column, the picture itself is untouched
    assert np.abs(decoded[3][:127, :95].astype(float) - odd[3]).mean() < 4.0


def test_gif_exact_palette_duration_loop(tmp_path, pingus):
    images, labels = pingus
    out = tmp_path / "walk.gif"
    write_sequence(out, images, labels, _steps(images), fps=10)
    with Image.open(out) as im:
        assert im.n_frames == 8
        assert im.info["loop"] == 0
        for i in range(im.n_frames):
            im.seek(i)
            assert im.info["duration"] == 100
            # pixel art has < 256 colours: the adaptive palette reproduces it exactly
            assert np.array_equal(np.array(im.convert("RGB")), images[i])


def test_gif_once_and_duration_rounding(tmp_path, bunny):
    images, labels = bunny
    out = tmp_path / "once.gif"
    write_sequence(out, images[:5], labels[:5], _steps(images[:5]), fps=12, loop=False)
    with Image.open(out) as im:
        assert im.n_frames == 5
        assert "loop" not in im.info
        assert abs(im.info["duration"] - 1000 / 12) <= 10  # GIF stores 10 ms units
        im.seek(2)
        err = np.abs(np.array(im.convert("RGB")).astype(float) - images[2]).mean()
        assert err < 8.0  # adaptive palette on a photographic frame
    with pytest.raises(ReseqError, match="50 fps"):
        write_sequence(tmp_path / "fast.gif", images, labels, _steps(images), fps=60)
    assert not (tmp_path / "fast.gif").exists()


def test_png_sequence_and_index(tmp_path, robot):
    images, labels = robot
    folder = tmp_path / "frames"
    index = tmp_path / "frames.json"
    extra = [{"source_index": 7 - i} for i in range(8)]
    extra[2]["synthetic"] = True
    written = write_sequence(str(folder) + "/", images, labels, _steps(images), index=index,
                             index_csv=True, extra=extra)
    assert written == [folder, index, tmp_path / "frames.csv"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{i:04d}.png" for i in range(8)]
    for i, name in enumerate(names):
        assert np.array_equal(np.array(Image.open(folder / name)), images[i])

    records = json.loads(index.read_text())
    assert len(records) == 8
    assert records[0] == {"index": 0, "label": "0000.png",
                          "distance_to_next": pytest.approx(_steps(images)[0]),
                          "synthetic": False, "source_index": 7}
    assert records[2]["synthetic"] is True
    assert records[-1]["distance_to_next"] is None
    with open(tmp_path / "frames.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == labels
    assert rows[-1]["distance_to_next"] == "" and rows[1]["source_index"] == "6"
    assert float(rows[0]["distance_to_next"]) == pytest.approx(_steps(images)[0])
    assert _no_temp_files(tmp_path)


def test_png_folder_refusal_and_force(tmp_path, robot):
    images, labels = robot
    with pytest.raises(ReseqError, match="cannot tell"):
        write_sequence(tmp_path / "out", images, labels, _steps(images))  # no '/', not a folder
    folder2 = tmp_path / "seq"
    folder2.mkdir()  # an existing empty folder is a PNG target too
    write_sequence(folder2, images, labels, _steps(images))
    assert len(list(folder2.glob("*.png"))) == 8
    with pytest.raises(ReseqError, match=r"not empty.*--force"):
        write_sequence(folder2, images[:3], labels[:3], _steps(images[:3]))
    # --force replaces the PNGs reseq wrote there (marked by their text chunk) ...
    write_sequence(folder2, images[:3], labels[:3], _steps(images[:3]), force=True)
    assert sorted(p.name for p in folder2.iterdir()) == ["0000.png", "0001.png", "0002.png"]
    # ... but a folder holding anything else (a note, the user's own frames) is refused
    (folder2 / "notes.txt").write_text("keep me")
    with pytest.raises(ReseqError, match=r"did not write.*notes\.txt"):
        write_sequence(folder2, images, labels, _steps(images), force=True)
    (folder2 / "notes.txt").unlink()
    Image.fromarray(images[0]).save(folder2 / "0001.png")  # a user's frame with reseq's name
    before = (folder2 / "0001.png").read_bytes()
    with pytest.raises(ReseqError, match=r"did not write.*0001\.png"):
        write_sequence(folder2, images, labels, _steps(images), force=True)
    assert (folder2 / "0001.png").read_bytes() == before
    assert _no_temp_files(tmp_path)


def test_never_overwrites_and_checks_all_targets_first(tmp_path, robot):
    images, labels = robot
    out, index = tmp_path / "a.mp4", tmp_path / "a.json"
    index.write_text("precious")
    with pytest.raises(ReseqError, match="already exists"):
        write_sequence(out, images, labels, _steps(images), index=index)
    assert not out.exists()  # nothing was written because one target was taken
    assert index.read_text() == "precious"
    write_sequence(out, images, labels, _steps(images), index=index, force=True)
    assert json.loads(index.read_text())[0]["label"] == "0000.png"
    before = out.read_bytes()
    with pytest.raises(ReseqError, match="--force"):
        write_sequence(out, images[:2], labels[:2], _steps(images[:2]))
    assert out.read_bytes() == before
    with pytest.raises(ReseqError, match="same file"):
        write_sequence(tmp_path / "b.gif", images, labels, _steps(images), index=tmp_path / "b.gif")
    assert _no_temp_files(tmp_path)


def test_bad_inputs(tmp_path, robot):
    images, labels = robot
    with pytest.raises(ReseqError, match="labels"):
        write_sequence(tmp_path / "x.mp4", images, labels[:3], _steps(images))
    with pytest.raises(ReseqError, match="uint8"):
        write_sequence(tmp_path / "x.mp4", images.astype(float), labels, _steps(images))
    with pytest.raises(ReseqError, match="no frames"):
        write_sequence(tmp_path / "x.mp4", images[:0], [], [])
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet(tmp_path, bunny, pingus):
    images, labels = bunny
    out = contact_sheet(tmp_path / "sheet.png", images, labels, n=6, title="bunny")
    sheet = np.array(Image.open(out))
    # 320 px frames are shrunk to 256 px cells; 6 frames -> 3 columns x 2 rows
    assert sheet.shape[1] == 3 * (256 + 6) + 6
    assert sheet.shape[0] > 2 * 144
    # small pixel art is enlarged without blurring: first cell is frame 0 scaled x1 (128 px)
    p_images, p_labels = pingus
    out2 = contact_sheet(tmp_path / "p.png", p_images, p_labels, n=4, cols=4)
    cells = np.array(Image.open(out2))
    assert np.array_equal(cells[6:6 + 128, 6:6 + 128], p_images[0])
    assert np.array_equal(cells[6:6 + 128, 6 + 3 * 134:6 + 3 * 134 + 128], p_images[7])
    with pytest.raises(ReseqError, match="already exists"):
        contact_sheet(out2, p_images, p_labels)


def _knn_scores(images: np.ndarray, k: int = 3) -> np.ndarray:
    x = images.reshape(len(images), -1).astype(float) / 255
    d = np.sqrt(((x[:, None] - x[None]) ** 2).mean(-1))
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, :k].mean(axis=1), d


def test_outlier_histogram(tmp_path, bunny, robot):
    images = np.concatenate([bunny[0][:, :128, :96], robot[0][:2]])
    scores, _ = _knn_scores(images)
    from scipy import stats

    params = stats.gengamma.fit(scores)
    threshold = float(stats.gengamma(*params).ppf(0.9))
    mask = scores > threshold
    out = outlier_histogram(tmp_path / "h.png", scores, params, threshold, mask)
    im = Image.open(out)
    assert im.size == (840, 480)
    assert len(np.unique(np.array(im.convert("RGB")).reshape(-1, 3), axis=0)) > 10


def test_mst_plot(tmp_path, bunny):
    from scipy.sparse.csgraph import minimum_spanning_tree

    images, labels = bunny
    _, d = _knn_scores(images)
    np.fill_diagonal(d, 0)
    tree = minimum_spanning_tree(d)
    assert tree.nnz == len(images) - 1
    out = mst_plot(tmp_path / "mst.png", tree, images, labels, keys=[0, 19])
    w, h = Image.open(out).size
    assert w > 500 and h > 500
    rows = [(i, j, d[i, j]) for i, j in zip(*tree.nonzero(), strict=True)]
    out2 = mst_plot(tmp_path / "mst2.png", rows, images, labels, thumbnails=False)
    assert out2.exists() and _no_temp_files(tmp_path)


def test_outputs_get_usual_permissions_and_container(tmp_path, robot):
    import os
    import stat

    images, labels = robot
    umask = os.umask(0o022)
    try:
        written = write_sequence(tmp_path / "a.mkv", images, labels, _steps(images),
                                 index=tmp_path / "a.json")
        folder = write_sequence(str(tmp_path / "pngs") + "/", images, labels, _steps(images))[0]
    finally:
        os.umask(umask)
    for p in [*written, folder / "0000.png"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    with av.open(str(written[0])) as container:
        assert "matroska" in container.format.name
        assert container.streams.video[0].codec_context.name == "h264"
