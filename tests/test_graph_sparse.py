"""reseq.graph.sparse / knn: the graph algorithms on sketches + a neighbour graph, against the
dense ones on the exact LPIPS matrix of small real collections."""

from __future__ import annotations

import numpy as np
import pytest

import reseq.graph as g
from reseq.errors import ReseqError


@pytest.fixture(scope="module")
def data(clip_frames):
    """174 real frames at 64x36 (bunny, Earth, city: three clips), their exact LPIPS matrix,
    their sketches (d = 1024) and candidate graph (k = 10)."""
    from reseq.distances import distance_matrix
    from reseq.graph.knn import knn_graph
    from reseq.sketches import sketch

    fr = np.concatenate([clip_frames(n, size=64).array
                         for n in ("r3d_bigbuckbunny", "r3d_earth_a", "nat_city_a")])
    D = distance_matrix(fr, progress=False, cache=False)
    S = sketch(fr, d=1024, cache=False, progress=False)
    return fr, D, knn_graph(S, 10)


def test_knn_is_exact_symmetric_and_connected(data):
    from scipy.sparse.csgraph import connected_components

    from reseq.graph.knn import knn

    _, _, SD = data
    _, dist = knn(SD.S, 5)
    brute = SD.block(np.arange(len(SD)))
    np.fill_diagonal(brute, np.inf)
    assert np.allclose(dist, np.sort(brute, 1)[:, :5], rtol=1e-9, atol=1e-12)
    G = SD.graph
    assert (G != G.T).nnz == 0
    assert connected_components(G, directed=False)[0] == 1


def test_graph_is_made_connected_and_keeps_zero_distances():
    from scipy.sparse.csgraph import connected_components

    from reseq.graph.knn import knn_graph
    from reseq.graph.sparse import ZERO

    rng = np.random.default_rng(0)
    S = np.concatenate([rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 100.0,
                        rng.normal(size=(5, 8)) - 100.0]).astype(np.float32)
    S[7] = S[3]  # a duplicate: distance exactly 0, a real edge
    SD = knn_graph(S, 3)
    assert connected_components(SD.graph, directed=False)[0] == 1
    assert SD.graph[3, 7] == ZERO and SD.distance([3], [7])[0] == 0.0
    tree = g.minimum_spanning_tree(SD)
    assert len(tree) == len(S) - 1
    assert any({a, b} == {3, 7} and w == 0.0 for a, b, w in tree)
    assert sorted({b for _, b, _ in tree} | {0}) == list(range(len(S)))


def test_sparse_order_matches_dense_within_half_a_percent(data):
    from reseq.graph.sparse import sparse_order

    _, D, SD = data
    dense = g.order(D)
    # small windows so that the whole large-N route runs: greedy, local search, pieces, windows
    for kw in ({}, {"start": 5, "end": 100}):
        sp = sparse_order(SD, window=40, **kw)
        ref = dense if not kw else g.order(D, **kw)
        assert sorted(sp.order.tolist()) == list(range(len(D)))
        if kw:
            assert sp.order[0] == 5 and sp.order[-1] == 100
        # measured: +0.34% (free ends), +0.04% (fixed ends), on the exact matrix
        assert g.path_cost(D, sp.order) <= 1.01 * ref.cost
        assert sp.cost == pytest.approx(SD.path_cost(sp.order))
    # reseq.order dispatches (N <= window: the dense solver on the sketch distances)
    p = g.order(SD)
    assert g.path_cost(D, p.order) <= 1.01 * dense.cost


def test_sparse_loop_matches_dense(data):
    from reseq.graph.sparse import sparse_loop

    _, D, SD = data
    dense = g.loop(D)
    sp = sparse_loop(SD, window=40)
    assert sp.closed and sp.order[0] == 0 and sorted(sp.order.tolist()) == list(range(len(D)))
    assert g.path_cost(D, sp.order, closed=True) <= 1.01 * dense.cost  # measured +0.16%


def test_sparse_mst_inbetweens_outliers_agree_with_dense(data):
    _, D, SD = data
    dense = g.minimum_spanning_tree(D)
    tree = g.minimum_spanning_tree(SD)
    assert len(tree) == len(D) - 1
    seen = {0}
    for a, b, _ in tree:  # parents before children
        assert a in seen
        seen.add(b)
    weight = sum(D[a, b] for a, b, _ in tree)
    assert weight <= 1.01 * sum(w for _, _, w in dense)  # measured +0.2%
    ib = g.inbetweens(SD, [0, 60, 120])
    assert ib.path[0] == 0 and ib.path[-1] == 120 and 60 in ib.path.tolist()
    od, os_ = g.outliers(D), g.outliers(SD)
    assert np.corrcoef(od.scores, os_.scores)[0, 1] > 0.99
    inter = len(set(od.indices) & set(os_.indices))
    assert inter >= 0.8 * max(len(od.indices), len(os_.indices))


def test_subsets_permutations_and_dense_only_steps(data):
    SD = data[2]
    perm = np.random.default_rng(1).permutation(len(SD))
    P = SD[np.ix_(perm, perm)]
    assert np.allclose(P.block(np.arange(10)), SD.block(perm[:10]))
    assert P[np.array([0, 1]), np.array([2, 3])].tolist() == \
        SD.distance(perm[[0, 1]], perm[[2, 3]]).tolist()
    sub = SD[np.ix_(np.arange(50), np.arange(50))]
    assert len(sub) == 50 and sub.graph.shape == (50, 50)
    from reseq.sequences import sample_cycle

    with pytest.raises(ReseqError, match="dense distance matrix"):
        sample_cycle(np.arange(len(SD)), SD, 5)


def test_cli_order_sparse_says_so(run_cli, tmp_path, dev_clips):
    out = tmp_path / "o.gif"
    r = run_cli("order", str(dev_clips / "r3d_earth_a"), "--size", "64", "--sparse", "--shuffle",
                "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "APPROXIMATE sparse path" in r.stdout and out.is_file()
    r = run_cli("order", str(dev_clips / "r3d_earth_a"), "--size", "64", "--sparse",
                "--metric", "l2", "-o", str(tmp_path / "p.gif"))
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("reseq: error: --sparse needs --metric lpips")


def test_ivf_index_is_near_exact_deterministic_with_exact_distances(data, monkeypatch):
    """The approximate search on real-frame sketches, made harder than at scale: each of the 4
    k-means cells compared with itself only (at scale with its NPROBE nearest of 2 sqrt(N))."""
    import reseq.graph.knn as kn

    S = data[2].S
    ei, ed = kn.knn(S, 10, method="exact")
    monkeypatch.setattr(kn, "NPROBE", 1)
    ai, ad = kn.knn(S, 10, method="ivf")
    assert ai.shape == ei.shape and (ai != np.arange(len(S))[:, None]).all()
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ai, ei)])
    assert recall >= 0.85  # measured 0.955 (NPROBE = 16 at 20,000 real frames: 0.9997)
    assert np.array_equal(ad, kn._exact(S, np.repeat(np.arange(len(S)), 10), ai.ravel())
                          .reshape(ad.shape))
    assert (ad >= ed - 1e-12).all()  # never nearer than the true k nearest
    assert (np.diff(ad, axis=1) >= 0).all()
    import faiss

    threads = faiss.omp_get_max_threads()
    try:
        for t in (1, 2):  # the same index and result on 1 and 2 threads
            faiss.omp_set_num_threads(t)
            again = kn.knn(S, 10, method="ivf")
            assert np.array_equal(again[0], ai) and np.array_equal(again[1], ad)
    finally:
        faiss.omp_set_num_threads(threads)


def test_auto_switches_to_the_index_above_exact_max(monkeypatch):
    import reseq.graph.knn as kn

    rng = np.random.default_rng(3)
    S = rng.normal(size=(200, 16)).astype(np.float32)
    S[5] = S[9]  # a duplicate: both find each other at distance 0
    calls = []
    real = kn._Index

    class Spy(real):
        def __init__(self, *a, **kw):
            calls.append(1)
            super().__init__(*a, **kw)

    monkeypatch.setattr(kn, "_Index", Spy)
    ref = kn.knn(S, 4)
    assert calls == []
    monkeypatch.setattr(kn, "EXACT_MAX", 199)
    got = kn.knn(S, 4)
    assert calls == [1]
    assert got[0][5, 0] == 9 and got[0][9, 0] == 5 and got[1][5, 0] == 0.0
    assert np.array_equal(got[1][:, 0], ref[1][:, 0])  # 4 cells, 4 probed: exact
    SD = kn.knn_graph(S[np.r_[0:100, 100:200]] + np.r_[np.zeros(100), np.full(100, 50.0)]
                      [:, None].astype(np.float32), 4)
    from scipy.sparse.csgraph import connected_components

    assert connected_components(SD.graph, directed=False)[0] == 1
    with pytest.raises(ReseqError, match="unknown neighbour search"):
        kn.knn(S, 4, method="hnsw")


@pytest.mark.slow
def test_exact_search_on_a_real_dask_cluster_is_identical(data, dask_cluster, monkeypatch):
    """Query blocks as tasks on a real scheduler's two workers: the same idx and dist."""
    import reseq.graph.knn as kn

    S = data[2].S
    monkeypatch.setattr(kn, "BLOCK", 16)  # 174 rows: 11 blocks, 2 tasks of 8 blocks
    ref = kn.knn(S, 10, method="exact")
    got = kn.knn(S, 10, method="exact", scheduler=dask_cluster)
    assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
    monkeypatch.setenv("RESEQ_DASK_SCHEDULER", dask_cluster)
    SD = kn.knn_graph(S, 10)
    assert (SD.graph != data[2].graph).nnz == 0


def test_greedy_path_is_a_hamiltonian_path_through_the_ends_and_graph_rows_list_neighbours(data):
    from reseq.graph.sparse import SparseDistances, greedy_path

    SD = data[2]
    n = len(SD)
    G = SD.graph
    for start, end in ((None, None), (5, None), (None, 7), (5, 7), (100, 3)):
        p = greedy_path(SD, start, end)
        assert np.array_equal(np.sort(p), np.arange(n))
        assert start is None or p[0] == start
        assert end is None or p[-1] == end
        # the greedy takes candidate edges first: most steps are edges of the graph
        assert np.mean(np.asarray(G[p[:-1], p[1:]]).ravel() > 0) > 0.9
    # a graph without its neighbour lists (loaded from disk) lists them from its rows
    idx, dist = SparseDistances(SD.S, SD.graph).neighbours(5)
    brute = SD.block(np.arange(n))
    np.fill_diagonal(brute, np.inf)
    assert np.allclose(dist, np.sort(brute, 1)[:, :5], rtol=1e-9, atol=1e-12)
    assert np.allclose(dist, np.take_along_axis(brute, idx, 1), rtol=1e-9, atol=1e-12)
