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
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1 (dashboards off)."""
    from distributed import Client

    import reseq.sketches as sk
    from conftest import free_port

    monkeypatch.setattr(sk, "SHARD", 16)
    x = frames[:64]  # 4 shards
    ref = sk.sketch(x, d=128, cache=False, progress=False, device="cpu")
    with Client(dask_cluster, timeout=30, set_as_default=False) as client:
        monkeypatch.setenv("RESEQ_DASK_SCHEDULER", dask_cluster)
        got = sk.sketch(x, d=128, cache=False, progress=False, device="cpu")
        workers = {ws["name"] for ws in client.scheduler_info()["workers"].values()}
    assert workers == {"w0", "w1"}
    assert np.array_equal(got, ref)  # bit for bit
    with pytest.raises(ReseqError, match="cannot reach the Dask scheduler"):
        sk._dask_client(f"tcp://127.0.0.1:{free_port()}", timeout=2)
