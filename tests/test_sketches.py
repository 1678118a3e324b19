"""reseq.sketches: sketch distances estimate LPIPS on real frames; seeded, cached, resumable."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from reseq.errors import ReseqError, ReseqWarning


@pytest.fixture(scope="module")
def frames(clip_frames):
    """116 real frames at 64x36: the bunny and the rotating Earth dev clips."""
    return np.concatenate([clip_frames("r3d_bigbuckbunny", size=64).array,
                           clip_frames("r3d_earth_a", size=64).array])


@pytest.fixture(scope="module")
def exact(frames):
    from reseq.distances import distance_matrix

    return distance_matrix(frames, progress=False, cache=False)


def test_sketch_distances_estimate_lpips_within_the_documented_error(frames, exact):
    from reseq.graph.sparse import SparseDistances
    from reseq.sketches import ACCURACY, sketch

    S = sketch(frames, d=1024, cache=False, progress=False, device="cpu")
    assert S.shape == (len(frames), 1024) and S.dtype == np.float32
    est = SparseDistances(S, np.zeros((len(S), len(S)))).block(np.arange(len(S)))
    iu = np.triu_indices(len(S), 1)
    rel = (est[iu] - exact[iu]) / exact[iu]
    documented, recall_doc = ACCURACY[1024]
    # documented: 2.7% median on 600 frames; a different sample of pairs and one projection
    assert np.median(np.abs(rel)) < 2 * documented
    assert abs(rel.mean()) < documented  # no systematic bias
    A, B = exact.copy(), est.copy()
    np.fill_diagonal(A, np.inf)
    np.fill_diagonal(B, np.inf)
    ta, tb = np.argsort(A, 1)[:, :10], np.argsort(B, 1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ta, tb)])
    assert recall > recall_doc - 0.08


def test_projection_is_seeded_and_unbiased():
    from reseq.sketches import projection

    P0, P0b, P1 = projection(500, 64, 0), projection(500, 64, 0), projection(500, 64, 1)
    assert (P0 != P0b).nnz == 0 and (P0 != P1).nnz > 0
    x = np.random.default_rng(3).normal(size=500).astype(np.float32)
    ratios = [float(np.sum((x @ projection(500, 64, s)) ** 2) / np.sum(x ** 2))
              for s in range(200)]
    assert abs(np.mean(ratios) - 1.0) < 0.03  # E ||P^T x||^2 = ||x||^2


def test_duplicates_seeds_and_errors(frames):
    from reseq.sketches import sketch

    x = np.concatenate([frames[:5], frames[2:3]])
    a = sketch(x, d=64, cache=False, progress=False)
    assert np.array_equal(a, sketch(x, d=64, cache=False, progress=False))
    assert np.array_equal(a[5], a[2])  # a duplicate: the same sketch, distance exactly 0
    assert not np.array_equal(sketch(x, d=64, seed=1, cache=False, progress=False), a)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ReseqError, match="sketch length"):
            sketch(x, d=bad, cache=False, progress=False)
    with pytest.raises(ReseqError, match="device"):
        sketch(x, d=64, cache=False, progress=False, device="tpu")


def test_shards_are_cached_verified_and_resumed(frames, tmp_path, monkeypatch):
    import reseq.features
    import reseq.sketches as sk

    monkeypatch.setenv("RESEQ_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RESEQ_NO_CACHE", raising=False)
    monkeypatch.setattr(sk, "SHARD", 16)
    monkeypatch.setattr(sk, "BATCH", 8)
    x = frames[:60]  # 4 shards
    ref = sk.sketch(x, d=128, cache=False, progress=False)
    # an interrupted run: the network fails on the third shard
    real, calls = reseq.features.lpips_embedding, []

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) > 2 * 2:  # 2 batches of 8 per shard
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(reseq.features, "lpips_embedding", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sk.sketch(x, d=128, progress=False)
    monkeypatch.setattr(reseq.features, "lpips_embedding", real)
    stats: dict = {}
    got = sk.sketch(x, d=128, progress=False, stats=stats)
    assert stats["shards"] == 4 and stats["shards_cached"] == 2  # resumed
    assert np.array_equal(got, ref)
    stats = {}
    assert np.array_equal(sk.sketch(x, d=128, progress=False, stats=stats), ref)
    assert stats["shards_cached"] == 4
    # a damaged shard is discarded with a warning and recomputed
    shard = sorted((tmp_path / "sketches").rglob("*.sk"))[0]
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = sk.sketch(x, d=128, progress=False)
    assert np.array_equal(again, ref)
    assert any(issubclass(w.category, ReseqWarning) and "damaged" in str(w.message)
               for w in caught)
    # another d is another key
    stats = {}
    sk.sketch(x, d=64, progress=False, stats=stats)
    assert stats["shards_cached"] == 0


def test_resolve_device():
    from reseq.features import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ReseqError, match="unknown device"):
        resolve_device("gpu0")


@pytest.mark.slow
def test_a_real_dask_cluster_gives_the_same_sketches(frames, dask_cluster, monkeypatch):
    import reseq.sketches as sk
    from conftest import free_port

    monkeypatch.setattr(sk, "SHARD", 16)
    x = frames[:64]  # 4 shards
    ref = sk.sketch(x, d=128, cache=False, progress=False, device="cpu")
    monkeypatch.setenv("RESEQ_DASK_SCHEDULER", dask_cluster)
    got = sk.sketch(x, d=128, cache=False, progress=False, device="cpu")
    assert np.array_equal(got, ref)  # bit for bit
    with pytest.raises(ReseqError, match="cannot reach the Dask scheduler"):
        sk._dask_client(f"tcp://127.0.0.1:{free_port()}", timeout=2)


# ------------------------------------------------------------ decoding on the workers


@pytest.fixture(scope="module")
def video(tmp_path_factory, clip_frames):
    """A real 166-frame H.264 MP4 (B-frames, a key frame at the cut between clips) written by
    reseq's own writer from three dev clips at 96x54: bunny, then the two Earth clips."""
    from reseq.render import write_sequence

    arr = np.concatenate([clip_frames(c, size=96).array
                          for c in ("r3d_bigbuckbunny", "r3d_earth_a", "r3d_earth_b")])
    path = tmp_path_factory.mktemp("video") / "clips.mp4"
    write_sequence(path, arr, [str(i) for i in range(len(arr))], [None] * len(arr), fps=24)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory, dev_clips):
    """40 real PNG frames of a dev clip, the 3rd one copied again as the 30th (another shard at
    16 frames a shard), and a damaged PNG: duplicates across shards, a file to skip."""
    import shutil

    src = sorted((dev_clips / "r3d_earth_a").glob("*.png"))
    assert len(src) >= 40
    out = tmp_path_factory.mktemp("folder") / "frames"
    out.mkdir()
    for i in range(40):
        shutil.copy(src[i], out / f"{i:03d}.png")
    shutil.copy(src[2], out / "029b.png")  # natural order: between 029 and 030
    (out / "035b.png").write_bytes(src[5].read_bytes()[:200])  # truncated: unreadable
    return out


def test_video_ranges_tile_the_video_exactly(video):
    import av

    from reseq.frames import decode_video_frames, load_frames, video_index

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        keys = [p.pts for p in c.demux(s) if p.size and p.is_keyframe]
        assert s.codec_context.has_b_frames
    assert len(keys) >= 2  # ranges after the second key frame are sought, not decoded from 0
    index = video_index(video)
    assert len(index) == 166
    for every, step in ((1, 16), (1, 7), (3, 5)):
        ref = load_frames(video, size=64, every=every, progress=False)
        kept = list(range(0, len(index), every))
        first, _ = decode_video_frames(video, index, kept[:1], 64)
        parts = [decode_video_frames(video, index.part(r[0], r[-1] + 1), r,
                                     target=first.size)
                 for r in (kept[a:a + step] for a in range(0, len(kept), step))]
        assert not any(missing for _, missing in parts)
        labels = [lb for f, _ in parts for lb in f.labels]
        assert labels == ref.labels  # none lost, none doubled, same numbers and times
        assert np.array_equal(np.concatenate([f.array for f, _ in parts]), ref.array)


def test_sketch_source_equals_sketch_of_the_loaded_frames(video, folder, tmp_path,
                                                          monkeypatch):
    """No duplicates: the same shards and batches, so the same sketches bit for bit; with
    duplicates, float32 rounding apart, and duplicates across shards at distance exactly 0."""
    import reseq.sketches as sk
    from reseq.frames import load_frames

    monkeypatch.setattr(sk, "SHARD", 16)
    stats: dict = {}
    got = sk.sketch_source(video, size=64, every=2, d=128, cache=False, progress=False,
                           device="cpu", stats=stats)
    fr = load_frames(video, size=64, every=2, progress=False)
    assert stats["decoded"] == "tasks" and stats["shards"] == 6 and stats["distinct"] == 83
    assert got.labels == fr.labels and got.size == fr.size
    assert np.array_equal(got.array, sk.sketch(fr, d=128, cache=False, progress=False,
                                               device="cpu"))
    with pytest.warns(ReseqWarning, match="skipped 1 unreadable image"):
        got = sk.sketch_source(folder, size=64, d=128, cache=False, progress=False,
                               device="cpu")
    with pytest.warns(ReseqWarning, match="skipped 1 unreadable image"):
        fr = load_frames(folder, size=64, progress=False)
    assert got.labels == fr.labels and len(got) == 41
    i, j = got.labels.index("002.png"), got.labels.index("029b.png")
    assert i // 16 != j // 16  # in different shards
    assert np.array_equal(got.array[i], got.array[j])  # distance exactly 0
    ref = sk.sketch(fr, d=128, cache=False, progress=False, device="cpu")
    assert np.allclose(got.array, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    with pytest.raises(ReseqError, match="does not exist"):
        sk.sketch_source(folder / "nothing.mp4", progress=False)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video " * 100)
    with pytest.raises(ReseqError, match=r"cannot read .*bad\.mp4 as a video"):
        sk.sketch_source(bad, progress=False)


@pytest.mark.slow
def test_a_real_dask_cluster_decodes_and_sketches_like_this_process(video, folder, dask_cluster,
                                                                   tmp_path, monkeypatch):
    import os
    import shutil

    import reseq.sketches as sk

    monkeypatch.setattr(sk, "SHARD", 16)
    warnings.simplefilter("ignore", ReseqWarning)  # the folder's damaged PNG
    for src, shards in ((video, 4), (folder, 3)):  # 64 frames; the folder's 41 readable ones
        ref = sk.sketch_source(src, size=64, max_frames=64, d=128, cache=False, progress=False,
                               device="cpu")
        stats: dict = {}
        got = sk.sketch_source(src, size=64, max_frames=64, d=128, cache=False, progress=False,
                               device="cpu", scheduler=dask_cluster, stats=stats)
        assert stats["decoded"] == "workers" and stats["shards"] == shards
        assert got.labels == ref.labels and got.hashes == ref.hashes
        assert np.array_equal(got.array, ref.array)  # bit for bit
    if os.geteuid() != 0:
        pytest.skip("the workers' read failure needs root's client and unprivileged workers")
    # a source this process reads and the workers cannot: one clear error that says why
    hidden = tmp_path / "hidden.mp4"
    shutil.copy(video, hidden)
    hidden.chmod(0)
    with pytest.raises(ReseqError, match=r"Dask worker tcp://.* cannot read .*hidden.mp4.*"
                                         r"same path"):
        sk.sketch_source(hidden, size=64, max_frames=32, d=64, cache=False, progress=False,
                         scheduler=dask_cluster)


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_finished_shards(video, dask_cluster, tmp_path, monkeypatch):
    """The client process is killed (SIGKILL) while the cluster computes; the next run, here
    in this process, reads the shards that were finished and computes the rest."""
    import os
    import subprocess
    import sys
    import time

    import reseq.sketches as sk

    cache = tmp_path / "cache"
    code = ("import reseq.sketches as sk; sk.SHARD = 8; "
            f"sk.sketch_source({str(video)!r}, size=64, d=128, device='cpu', progress=False, "
            f"scheduler={dask_cluster!r})")
    env = {**os.environ, "RESEQ_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    env.pop("RESEQ_NO_CACHE", None)
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(cache.glob("sketches/*/*.sks")) and child.poll() is None:
        assert time.monotonic() < deadline, "no shard finished in 2 minutes"
        time.sleep(0.002)
    child.kill()
    child.wait()
    assert child.returncode == -9, child.stderr.read().decode()[-2000:]
    finished = len(list(cache.glob("sketches/*/*.sks")))
    assert 1 <= finished < 21  # killed mid-run: 166 frames are 21 shards of 8
    monkeypatch.setenv("RESEQ_CACHE_DIR", str(cache))
    monkeypatch.delenv("RESEQ_NO_CACHE", raising=False)
    monkeypatch.setattr(sk, "SHARD", 8)
    stats: dict = {}
    got = sk.sketch_source(video, size=64, d=128, device="cpu", progress=False, stats=stats)
    assert stats["shards"] == 21 and stats["shards_cached"] == finished  # resumed
    ref = sk.sketch_source(video, size=64, d=128, device="cpu", progress=False, cache=False)
    assert np.array_equal(got.array, ref.array) and got.labels == ref.labels
    stats = {}
    sk.sketch_source(video, size=64, d=128, device="cpu", progress=False, stats=stats)
    assert stats["shards_cached"] == 21


@pytest.mark.slow
def test_the_cli_sends_decoding_to_the_workers_with_the_same_result(video, dask_cluster, tmp_path,
                                                                    run_cli):
    """`reseq order VIDEO --sparse --scheduler ...`: the workers decode the video; the order
    and the index are those of the run without a scheduler."""
    import json

    outs = []
    for name, extra in (("here", []), ("cluster", ["--scheduler", dask_cluster])):
        index = tmp_path / f"{name}.json"
        r = run_cli("order", video, "--sparse", "--size", "64", "--every", "2", "--device",
                    "cpu", "-o", tmp_path / f"{name}.gif", "--index", index, *extra,
                    env={"RESEQ_NO_CACHE": "1", "OMP_NUM_THREADS": "1"}, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "warning" not in r.stderr  # the workers' frames matched the ones decoded here
        outs.append([(rec["label"], rec["distance_to_next"]) for rec in json.loads(
            index.read_text())])
    assert outs[0] == outs[1] and len(outs[0]) == 83
