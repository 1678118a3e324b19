"""Gram-matrix distances equal the per-pair reference on real frames, with the right invariants."""

from __future__ import annotations

import numpy as np
import pytest

from reseq import distances as dmod
from reseq.distances import distance_matrix, frame_hashes, squared_euclidean
from reseq.errors import ReseqError
from reseq.features import lpips_pair
from reseq.frames import load_frames


@pytest.fixture(scope="module")
def bunny(bunny_video):
    # real frames at the default working long edge (256 x 144), 12 of them spread over the clip
    return load_frames(bunny_video, size=256, every=11, progress=False)


@pytest.fixture(scope="module")
def kenney(kenney_dir):
    return load_frames(kenney_dir / "robot", size=96, progress=False)


def _pairs(n, rng, k=8):
    pairs = {(0, 1), (0, n - 1), (n - 2, n - 1)}
    while len(pairs) < k:
        i, j = sorted(rng.choice(n, 2, replace=False))
        pairs.add((int(i), int(j)))
    return sorted(pairs)


@pytest.mark.parametrize(("which", "net"), [("bunny", "alex"), ("bunny", "vgg"), ("kenney", "alex")])
def test_gram_equals_per_pair_reference(request, which, net):
    frames = request.getfixturevalue(which)
    D = distance_matrix(frames, net=net, progress=False)
    rng = np.random.default_rng(0)
    for i, j in _pairs(len(frames), rng, k=6 if net == "vgg" else 10):
        ref = lpips_pair(frames.array[i], frames.array[j], net)
        assert abs(D[i, j] - ref) <= 1e-5, (i, j, D[i, j], ref)


@pytest.mark.parametrize("metric", ["lpips", "cosine", "l2"])
def test_matrix_invariants_and_duplicates(kenney, metric):
    arr = np.concatenate([kenney.array, kenney.array[[0, 3]]])  # two exact duplicates
    D = distance_matrix(arr, metric=metric, progress=False)
    n = len(arr)
    assert D.shape == (n, n) and D.dtype == np.float64
    assert np.array_equal(D, D.T)
    assert np.all(np.diag(D) == 0) and np.all(D >= 0)
    assert D[0, n - 2] == 0 and D[3, n - 1] == 0
    off = D[~np.eye(n, dtype=bool)]
    assert np.count_nonzero(off == 0) == 4  # only the duplicate pairs, both ways
    assert np.array_equal(D[n - 2], D[0]) and np.array_equal(D[n - 1], D[3])


def test_l2_matches_direct_pixels(kenney):
    D = distance_matrix(kenney, metric="l2", progress=False)
    x = kenney.array.reshape(len(kenney), -1).astype(np.float64) / 255
    direct = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    assert np.allclose(D, direct, atol=1e-4)


def test_cosine_matches_equation_11(kenney):
    from reseq.features import load_network, to_network_input

    D = distance_matrix(kenney, metric="cosine", progress=False)
    outs = load_network("alex")(to_network_input(kenney.array[[1, 5]]))
    d = 0.0
    for o in outs:
        y = o / (o.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        d += float(1 - (y[0] * y[1]).sum(0).mean())
    # eq. 11 equals the Gram route wherever features are non-zero at every position
    assert D[1, 5] == pytest.approx(d, abs=2e-3)


def test_streaming_through_disk_matches_in_memory(bunny):
    # both routes multiply the same fixed chunks of columns (CHUNK_COLS) in the same order, so
    # the arithmetic is the same whatever the budget: the matrices agree bit for bit here; the
    # limit (1e-7) leaves room only for a BLAS whose float32 GEMM is not reproducible, and
    # still catches chunks that depend on the budget (1.3e-6 when they did)
    small = bunny[:8]
    stats: dict = {}
    full = distance_matrix(small, progress=False, cache=False)
    streamed = distance_matrix(small, progress=False, cache=False, memory_budget=8 * 2**20,
                               stats=stats)
    assert stats["streamed"]
    assert np.abs(full - streamed).max() <= 1e-7


def test_caches_skip_network_and_gemm_on_second_run(kenney, monkeypatch, tmp_path):
    from reseq import cache

    monkeypatch.setattr(cache, "root", lambda: tmp_path)  # an empty cache for this test
    frames = kenney[:5]
    D1 = distance_matrix(frames, progress=False, cache=True)
    # every distinct frame now has a feature file keyed by its content hash
    from reseq.assets import WEIGHTS_VERSION

    h, w = frames.array.shape[1:3]
    store_dir = tmp_path / "features" / f"alex-{WEIGHTS_VERSION}-{dmod.FEATURE_FORMAT}-{w}x{h}"
    for key in frame_hashes(frames.array):
        assert (store_dir / key[:2] / f"{key}.feat").exists()

    def no_network(*args, **kwargs):
        raise AssertionError("the network ran although features were cached")

    import reseq.features

    monkeypatch.setattr(reseq.features, "normalized_features", no_network)
    # same frames in another order: the matrix cache answers, rows follow the new order
    stats: dict = {}
    rev = np.arange(len(frames))[::-1]
    D2 = distance_matrix(frames[rev], progress=False, cache=True, stats=stats)
    assert stats["matrix_cached"] and np.array_equal(D2, D1[np.ix_(rev, rev)])
    # another metric on the same features: no matrix cached yet, the features come from disk
    stats = {}
    Dc = distance_matrix(frames, metric="cosine", progress=False, cache=True, stats=stats)
    assert not stats["matrix_cached"] and Dc.shape == D1.shape and np.all(Dc[~np.eye(5, dtype=bool)] > 0)


def test_cli_imports_neither_torch_nor_scipy_stats():
    # a warm `reseq order` reads its matrix from the cache: importing torch (about 2 s) or
    # scipy.stats (about 1 s) there would be most of its time
    import subprocess
    import sys

    code = ("import sys, reseq.cli, reseq.cli.sequence, reseq.distances, reseq.evaluate; "
            "print(sorted(m for m in ('torch', 'scipy.stats') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_squared_euclidean_small():
    x = np.random.default_rng(0).normal(size=(7, 13))
    ref = ((x[:, None] - x[None]) ** 2).sum(-1)
    assert np.allclose(squared_euclidean(x), ref, atol=1e-4)


def test_bad_inputs():
    with pytest.raises(ReseqError, match="unknown metric"):
        distance_matrix(np.zeros((2, 8, 8, 3), np.uint8), metric="ssim")
    with pytest.raises(ReseqError, match="at least 2"):
        distance_matrix(np.zeros((1, 8, 8, 3), np.uint8), metric="l2")
    with pytest.raises(ReseqError, match="uint8"):
        distance_matrix(np.zeros((3, 8, 8), np.float32), metric="l2")
    mixed = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)]
    with pytest.raises(ReseqError, match=r"different sizes \(\(8, 8, 3\), \(9, 8, 3\)\)"):
        distance_matrix(mixed, metric="l2")
    for bad in ([], "frames", np.zeros((2, 0, 8, 3), np.uint8), [[1, 2], [3]]):
        with pytest.raises(ReseqError) as err:
            distance_matrix(bad, metric="l2")
        assert "\n" not in str(err.value)


def test_cli_writes_matrix_and_labels(run_cli, dev_clips, tmp_path):
    out = tmp_path / "D.npy"
    res = run_cli("distances", dev_clips / "cyc_kenney_zombie_walk", "--size", "96", "-o", out)
    assert res.returncode == 0, res.stderr
    D = np.load(out)
    import json

    labels = json.loads((tmp_path / "D.labels.json").read_text())["labels"]
    assert D.shape == (8, 8) and labels[0] == "0000.png"
    again = run_cli("distances", dev_clips / "cyc_kenney_zombie_walk", "-o", out)
    assert again.returncode != 0 and "--force" in again.stderr and "Traceback" not in again.stderr
    bad = run_cli("distances", tmp_path / "missing", "-o", tmp_path / "x.npy")
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def _available(device: str) -> bool:
    import torch

    if device == "cuda":
        return torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def test_gram_on_cpu_explicitly_is_the_default_bit_for_bit(kenney):
    # device="cpu" is the arithmetic of the default, whatever the route (in memory, streamed)
    frames = kenney[:5]
    for metric, budget in (("lpips", dmod.DEFAULT_BUDGET), ("lpips", 2**20), ("l2", 2**20)):
        ref = distance_matrix(frames, metric=metric, cache=False, progress=False,
                              memory_budget=budget)
        got = distance_matrix(frames, metric=metric, cache=False, progress=False,
                              memory_budget=budget, device="cpu")
        assert np.array_equal(got, ref), metric
    x = np.random.default_rng(1).normal(size=(9, 20000)).astype(np.float32)  # three chunks
    assert np.array_equal(squared_euclidean(x, device="cpu"), squared_euclidean(x))


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_gram_on_an_unavailable_device_is_a_clear_error(kenney, device, run_cli, dev_clips,
                                                        tmp_path):
    if _available(device):
        pytest.skip(f"{device} is available here")
    x = np.random.default_rng(0).normal(size=(4, 10))
    with pytest.raises(ReseqError, match=f"--device {device}"):
        squared_euclidean(x, device=device)
    with pytest.raises(ReseqError, match=f"--device {device}"):  # l2: no network, only the Gram
        distance_matrix(kenney[:3], metric="l2", cache=False, progress=False, device=device)
    with pytest.raises(ReseqError, match="unknown device"):
        squared_euclidean(x, device="tpu")
    out = tmp_path / "D.npy"
    res = run_cli("distances", dev_clips / "cyc_kenney_zombie_walk", "--size", "96", "--metric",
                  "l2", "--no-cache", "--device", device, "-o", out)
    assert res.returncode != 0 and not out.exists()
    assert res.stderr.count("\n") == 1 and f"--device {device}" in res.stderr, res.stderr
