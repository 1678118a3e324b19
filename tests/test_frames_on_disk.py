"""Frames that outgrow memory go to a nameless temporary file (reseq._util.DiskArray).

Real frames (the bunny sample) with ``RESEQ_MAX_MEMORY`` set low, so that the same code path
that a 10^5-frame video takes runs on a small clip: the frames must be the same pixels, the
outputs the same bytes, nothing may be left in the temporary folder, and streaming over frames
on disk must not pile them up in resident memory.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from reseq._util import (
    DiskArray,
    FrameView,
    frames_in_order,
    is_on_disk,
    iter_frames,
    release_pages,
    take_frames,
)
from reseq.frames import load_frames


@pytest.fixture(scope="module")
def bunny():
    return load_frames("sample:bunny", size=64)


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_spilled_frames_equal_in_memory(bunny, monkeypatch, tmp_path):
    monkeypatch.setenv("RESEQ_MAX_MEMORY", str(4 * 10 * bunny.array[0].nbytes))  # 10 frames
    monkeypatch.setenv("RESEQ_TMPDIR", str(tmp_path))
    disk = load_frames("sample:bunny", size=64)
    assert not is_on_disk(bunny.array) and is_on_disk(disk.array)
    assert np.array_equal(disk.array, bunny.array) and disk.labels == bunny.labels
    assert list(tmp_path.iterdir()) == []  # the file has no name: nothing to leave behind
    with pytest.raises(ValueError):  # read-only: the frames cannot be changed by accident
        disk.array[0, 0, 0, 0] = 1
    # a permutation of frames on disk stays on disk; a few frames come back into memory
    perm = np.random.default_rng(0).permutation(len(disk))
    moved = disk[perm]
    assert is_on_disk(moved.array) and np.array_equal(moved.array, bunny.array[perm])
    assert moved.labels == [bunny.labels[i] for i in perm]
    few = disk[[3, 1]]
    assert not is_on_disk(few.array) and np.array_equal(few.array, bunny.array[[3, 1]])


def test_streaming_over_frames_on_disk_keeps_memory_flat(tmp_path, monkeypatch):
    monkeypatch.setenv("RESEQ_TMPDIR", str(tmp_path))
    frame = (256, 256, 3)
    store = DiskArray(frame, 1024)
    rng = np.random.default_rng(0)
    for _ in range(8):
        store.append(rng.integers(0, 256, size=(128, *frame), dtype=np.uint8))
    arr = store.finish()  # 192 MiB on disk
    release_pages(arr)
    before = _rss()
    total = 0
    for im in iter_frames(arr, chunk=64):
        total += int(im[0, 0, 0])
    grown = _rss() - before
    assert total == int(arr[:, 0, 0, 0].astype(np.int64).sum())
    assert grown < 64 << 20, f"resident memory grew by {grown >> 20} MiB over 192 MiB of frames"
    same = take_frames(arr, np.arange(len(arr))[::-1])
    assert is_on_disk(same) or len(same) * np.prod(frame) <= 192 << 20
    assert np.array_equal(same[0], arr[-1])


def test_cli_output_identical_with_frames_on_disk(run_cli, tmp_path, bunny):
    env_disk = {"RESEQ_MAX_MEMORY": str(4 * 10 * 144 * 256 * 3), "RESEQ_TMPDIR": str(tmp_path / "t")}
    (tmp_path / "t").mkdir()
    outs = []
    for name, env in (("mem", {}), ("disk", env_disk)):
        out = tmp_path / f"{name}.mp4"
        r = run_cli("order", "sample:bunny", "--sparse", "-o", out, "--index",
                    tmp_path / f"{name}.json", env=env)
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert (tmp_path / "mem.json").read_text() == (tmp_path / "disk.json").read_text()
    assert os.listdir(tmp_path / "t") == []


def test_frames_written_in_path_order_are_read_in_place(bunny, monkeypatch, tmp_path):
    # no second file of frames: a view reads frame idx[i] from the first one when asked
    monkeypatch.setenv("RESEQ_MAX_MEMORY", str(4 * 10 * bunny.array[0].nbytes))
    monkeypatch.setenv("RESEQ_TMPDIR", str(tmp_path))
    disk = load_frames("sample:bunny", size=64).array
    idx = np.concatenate([np.random.default_rng(1).permutation(len(disk)), [0, 0, 5]])
    view = frames_in_order(disk, idx)
    assert isinstance(view, FrameView) and is_on_disk(view)
    assert view.shape == (len(idx), *disk.shape[1:]) and len(view) == len(idx)
    assert all(np.array_equal(a, bunny.array[i]) for a, i in zip(iter_frames(view, 8), idx))
    assert np.array_equal(view[-3:], bunny.array[[0, 0, 5]])
    mem = frames_in_order(bunny.array, idx)  # frames in memory: a plain copy
    assert isinstance(mem, np.ndarray) and np.array_equal(mem, bunny.array[idx])


def test_loop_outputs_identical_with_frames_on_disk(run_cli, tmp_path):
    env_disk = {"RESEQ_MAX_MEMORY": str(4 * 10 * 144 * 256 * 3), "RESEQ_TMPDIR": str(tmp_path / "t")}
    (tmp_path / "t").mkdir()
    for name, env in (("mem", {}), ("disk", env_disk)):
        r = run_cli("loop", "sample:bunny", "--sparse", "--frames", "150", "-o",
                    tmp_path / f"{name}.gif", "--sheet", tmp_path / f"{name}.png", env=env)
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "mem.gif").read_bytes() == (tmp_path / "disk.gif").read_bytes()
    assert (tmp_path / "mem.png").read_bytes() == (tmp_path / "disk.png").read_bytes()
    assert os.listdir(tmp_path / "t") == []


def test_unusable_temporary_folder_is_one_error_line(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = run_cli("order", "sample:bunny", "-o", tmp_path / "o.mp4",
                env={"RESEQ_MAX_MEMORY": "4M", "RESEQ_TMPDIR": str(blocker)})
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("reseq: error:") and "RESEQ_TMPDIR" in lines[-1], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o.mp4").exists()
