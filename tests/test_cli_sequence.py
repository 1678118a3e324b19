"""End-to-end tests of ``reseq order | loop | inbetween | outliers`` on real dev clips at 64 px:
outputs read back, summaries checked against the index files, bad input. The main job and the
bad inputs run ``reseq`` in a subprocess; the rest run the same click command in-process (one
torch import, one network load) to keep the suite fast."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

SIZE = ("--size", "64")


class _Result:
    def __init__(self, returncode: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def invoke():
    """Run a reseq command in-process (click's runner); same result shape as ``run_cli``."""
    from click.testing import CliRunner

    from reseq.cli import main

    def run(*args) -> _Result:
        res = CliRunner().invoke(main, [str(a) for a in args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        return _Result(res.exit_code, res.stdout, res.stderr)

    return run


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def _fails(proc, pattern: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reseq: error: "), proc.stderr
    assert re.search(pattern, lines[0]), lines[0]


def _number(text: str, pattern: str) -> float:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in:\n{text}"
    return float(m.group(1))


def _mp4_frames(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sum(1 for _ in c.decode(s)), s.width, s.height


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def test_order_reconstructs_shuffled_clip(run_cli, dev_clips, tmp_path):
    clip = dev_clips / "r3d_earth_a"  # 50 frames in true order, not cyclic
    out = tmp_path / "out" / "earth.mp4"
    index = tmp_path / "earth.json"
    text = _ok(run_cli("order", clip, *SIZE, "--shuffle", "--seed", "3", "--start", "0000.png",
                       "--end", "49", "-o", out, "--index", index, "--index-csv",
                       "--sheet", tmp_path / "sheet.png", "--fps", "10"))
    assert "50 frames in" in text and "50 frames out" in text
    records = json.loads(index.read_text())
    labels = [r["label"] for r in records]
    assert labels[0] == "0000.png" and labels[-1] == "0049.png"  # endpoints honoured
    assert sorted(r["source_index"] for r in records) == list(range(50))
    # LPIPS puts this clip back in its true order once the ends are given
    assert _number(text, r"Kendall tau distance to SOURCE order: ([\d.]+)") <= 0.02
    steps = [r["distance_to_next"] for r in records]
    assert steps[-1] is None and all(s >= 0 for s in steps[:-1])
    assert _number(text, r"cost ([\d.e-]+)") == pytest.approx(sum(steps[:-1]), rel=1e-3)
    assert _number(text, r"largest step ([\d.e-]+)") == pytest.approx(max(steps[:-1]), rel=1e-3)
    assert _mp4_frames(out) == (50, 64, 36)
    assert (tmp_path / "earth.csv").read_text().count("\n") == 51
    assert Image.open(tmp_path / "sheet.png").size[0] > 4 * 64
    for name in ("earth.mp4", "earth.json", "earth.csv", "sheet.png"):
        assert f"wrote {tmp_path}" in text and name in text
    assert _no_temp_files(tmp_path)


def test_shuffle_does_not_change_the_optimum(invoke, dev_clips, tmp_path):
    # 8 frames: solved exactly, so a shuffled input must give the same cost and loop
    clip = dev_clips / "cyc_kenney_robot_walk"
    a = _ok(invoke("order", clip, *SIZE, "-o", f"{tmp_path}/a/", "--index", tmp_path / "a.json"))
    b = _ok(invoke("order", clip, *SIZE, "--shuffle", "--seed", "5", "-o", f"{tmp_path}/b/",
                    "--index", tmp_path / "b.json"))
    cost = r"path: cost ([\d.e-]+)"
    assert _number(a, cost) == pytest.approx(_number(b, cost), rel=1e-9)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"{i:04d}.png"
                                                                   for i in range(8)]
    la = [r["label"] for r in json.loads((tmp_path / "a.json").read_text())]
    lb = [r["label"] for r in json.loads((tmp_path / "b.json").read_text())]
    assert la == lb  # same path, written running the way SOURCE runs
    first = np.array(Image.open(tmp_path / "b" / "0000.png"))
    src = np.array(Image.open(clip / la[0]).convert("RGB").resize((48, 64), Image.LANCZOS))
    assert np.abs(first.astype(float) - src).mean() < 3  # the PNG is the frame it claims


def test_loop_gif_chained_and_sampled(invoke, dev_clips, tmp_path):
    clip = dev_clips / "cyc_kenney_robot_walk"
    gif = tmp_path / "walk.gif"
    text = _ok(invoke("loop", clip, *SIZE, "--seconds", "2", "--fps", "8", "-o", gif,
                       "--index", tmp_path / "walk.json"))
    assert "8 frames in" in text and "16 frames out" in text
    with Image.open(gif) as im:
        assert im.n_frames == 16 and im.info["loop"] == 0
        assert abs(im.info["duration"] - 125) <= 10
    records = json.loads((tmp_path / "walk.json").read_text())
    assert len(records) == 16
    # a loop: every frame has a next one, including the last (back to the first)
    assert all(r["distance_to_next"] is not None for r in records)
    src = [r["source_index"] for r in records]
    assert sorted(src[:8]) == list(range(8)) and src[8:] == src[:8]
    steps = [r["distance_to_next"] for r in records]
    assert _number(text, r"largest step ([\d.e-]+)") == pytest.approx(max(steps), rel=1e-3)
    # closing: the last->first step is no larger than the largest inner step
    closing = _number(text, r"closing step ([\d.e-]+)")
    assert closing <= max(steps[:7]) + 1e-12

    once = _ok(invoke("loop", clip, *SIZE, "--sample", "5", "--play-once", "-o",
                       tmp_path / "five.gif"))
    assert "5 frames out" in once and "plays once" in once
    with Image.open(tmp_path / "five.gif") as im:
        assert im.n_frames == 5 and "loop" not in im.info

    # a loop over a subset the user lists
    _ok(invoke("loop", clip, *SIZE, "--only", "0000.png,2,4,0006", "--frames", "8", "-o",
               f"{tmp_path}/only/", "--index", tmp_path / "only.json"))
    labels = [r["label"] for r in json.loads((tmp_path / "only.json").read_text())]
    assert len(labels) == 8 and labels[4:] == labels[:4]
    assert sorted(labels[:4]) == ["0000.png", "0002.png", "0004.png", "0006.png"]
    assert len(list((tmp_path / "only").glob("*.png"))) == 8


def test_inbetween_is_the_mst_path(invoke, dev_clips, tmp_path):
    from reseq.distances import distance_matrix
    from reseq.frames import load_frames
    from reseq.graph import inbetweens

    clip = dev_clips / "r3d_bigbuckbunny"
    text = _ok(invoke("inbetween", clip, *SIZE, "--keys", "0000.png,40,0010", "-o",
                       tmp_path / "inb.mp4", "--index", tmp_path / "inb.json",
                       "--mst-plot", tmp_path / "mst.png"))
    labels = [r["label"] for r in json.loads((tmp_path / "inb.json").read_text())]
    frames = load_frames(clip, size=64, progress=False)
    expected = inbetweens(distance_matrix(frames, progress=False), [0, 40, 10])
    assert labels == [frames.labels[i] for i in expected.path]
    assert labels[0] == "0000.png" and labels[-1] == "0010.png" and "0040.png" in labels
    assert f"{len(labels)} frames out" in text
    counts = [int(c) for c in re.findall(r"(\d+) in-betweens", text)]
    assert counts == [int(c) for c in expected.counts]
    assert _mp4_frames(tmp_path / "inb.mp4")[0] == len(labels)
    assert Image.open(tmp_path / "mst.png").size[0] >= 600

    # without --keys: only the tree picture, to choose key-frames
    only = _ok(invoke("inbetween", clip, *SIZE, "--mst-plot", tmp_path / "choose.png"))
    assert "choose key-frames" in only and (tmp_path / "choose.png").exists()


def test_outliers_flag_and_remove_an_injected_frame(invoke, dev_clips, tmp_path):
    folder = tmp_path / "clip"
    shutil.copytree(dev_clips / "r3d_earth_a", folder)
    shutil.copy(dev_clips / "cyc_kenney_robot_walk" / "0003.png", folder / "0025x.png")
    text = _ok(invoke("outliers", folder, *SIZE, "-o", tmp_path / "hist.png",
                       "--sheet", tmp_path / "outliers.png"))
    assert "outlier: 0025x.png" in text
    assert _number(text, r"T = ([\d.e-]+)") > 0
    assert (tmp_path / "hist.png").exists() and (tmp_path / "outliers.png").exists()

    text = _ok(invoke("order", folder, *SIZE, "--remove-outliers", "-o", tmp_path / "o.gif",
                       "--index", tmp_path / "o.json"))
    assert "outliers removed" in text and "0025x.png" in text
    labels = [r["label"] for r in json.loads((tmp_path / "o.json").read_text())]
    assert "0025x.png" not in labels and len(labels) >= 45

    # asking for the removed frame by name is a clear error
    _fails(invoke("order", folder, *SIZE, "--remove-outliers", "--start", "0025x", "-o",
                   tmp_path / "p.gif"), "removed as an outlier")


def test_synthesize_inserts_marked_frames(invoke, dev_clips, tmp_path):
    from reseq.frames import load_frames
    from reseq.synth import train_vae

    clip = dev_clips / "cyc_kenney_robot_walk"
    frames = load_frames(clip, size=64, progress=False)
    model = tmp_path / "vae.pt"
    train_vae(frames.array, size=32, latent=8, epochs=2, checkpoint=model, show_progress=False)
    text = _ok(invoke("order", clip, *SIZE, "--synthesize", "--model", model,
                       "--synth-threshold", "0.01", "-o", tmp_path / "s.mp4",
                       "--index", tmp_path / "s.json"))
    made = int(_number(text, r"synthesized (\d+) in-between frames"))
    records = json.loads((tmp_path / "s.json").read_text())
    synthetic = [r for r in records if r["synthetic"]]
    assert made == len(synthetic) > 0
    assert len(records) == 8 + made and f"{8 + made} frames out" in text
    assert all(r["source_index"] is None and r["label"].startswith("synthetic")
               for r in synthetic)
    assert sorted(r["source_index"] for r in records if not r["synthetic"]) == list(range(8))
    assert all(r["distance_to_next"] >= 0 for r in records[:-1])
    assert "largest step" in text and "after" in text
    assert _mp4_frames(tmp_path / "s.mp4")[0] == 8 + made


def test_bad_input_is_one_line(run_cli, dev_clips, tmp_path):
    clip = dev_clips / "cyc_kenney_robot_walk"
    _fails(run_cli("order", clip, *SIZE, "--start", "walk99.png", "-o", tmp_path / "a.mp4"),
           "no frame named 'walk99.png'")
    _fails(run_cli("order", tmp_path / "missing", "-o", tmp_path / "a.mp4"), "does not exist")
    taken = tmp_path / "taken.gif"
    taken.write_bytes(b"mine")
    _fails(run_cli("loop", clip, *SIZE, "-o", taken), "already exists.*--force")
    assert taken.read_bytes() == b"mine"
    _fails(run_cli("order", clip, "-o", tmp_path / "a.avi"), "cannot tell what to write")
    _fails(run_cli("order", clip, "-o", tmp_path / "a.gif", "--synthesize"), "--model")
    _fails(run_cli("inbetween", clip, "--keys", "3", "-o", tmp_path / "a.gif"),
           "at least two")
    _fails(run_cli("loop", clip, "--effort", "0", "-o", tmp_path / "a.gif"), "effort")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.gif"]
