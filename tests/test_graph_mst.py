"""Minimum spanning tree (zeros are edges) and MST in-betweens, on real LPIPS matrices."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree as scipy_mst

from reseq.errors import ReseqError
from reseq.graph import inbetweens, minimum_spanning_tree


@pytest.fixture(scope="module")
def lpips(clip_frames):
    from reseq import distance_matrix

    cache: dict = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = distance_matrix(clip_frames(name), progress=False)
        return cache[name]

    return get


def _nx_weight(D: np.ndarray) -> float:
    G = nx.Graph()
    n = len(D)
    G.add_weighted_edges_from((i, j, float(D[i, j])) for i in range(n) for j in range(i + 1, n))
    T = nx.minimum_spanning_tree(G, algorithm="kruskal")
    assert T.number_of_edges() == n - 1
    return T.size(weight="weight")


def _check_tree(edges, D):
    n = len(D)
    assert len(edges) == n - 1
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from((u, v) for u, v, _ in edges)
    assert nx.is_tree(G)
    for u, v, w in edges:
        assert w == D[u, v]


@pytest.mark.parametrize("name", ["r3d_earth_a", "cyc_kivy_cube"])
def test_matches_scipy_without_zeros(lpips, name):
    D = lpips(name)
    assert (D + np.eye(len(D)) > 0).all()
    edges = minimum_spanning_tree(D)
    _check_tree(edges, D)
    assert sum(w for *_, w in edges) == pytest.approx(scipy_mst(D).sum(), rel=1e-12)


def test_duplicate_frames(clip_frames):
    """Exact duplicates give distance 0: still one spanning tree, as networkx's Kruskal."""
    from reseq import distance_matrix

    fr = clip_frames("px_wes_archer_die")
    idx = [0, 1, 2, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 10, 11, 12, 0]
    D = distance_matrix(fr.array[idx], progress=False)
    assert D[2, 3] == 0.0 and D[0, 16] == 0.0 and D[6, 8] == 0.0
    edges = minimum_spanning_tree(D)
    _check_tree(edges, D)
    ours = sum(w for *_, w in edges)
    assert ours == pytest.approx(_nx_weight(D), rel=1e-12)
    # scipy on a dense matrix takes 0 as "no edge": its tree avoids the free edges, is heavier
    assert scipy_mst(D).sum() > ours + 1e-6
    zero = {frozenset((u, v)) for u, v, w in edges if w == 0.0}
    assert {frozenset((2, 3)), frozenset((0, 16))} <= zero


def test_all_zero_matrix():
    edges = minimum_spanning_tree(np.zeros((5, 5)))
    _check_tree(edges, np.zeros((5, 5)))


def test_inbetweens_are_the_mst_path(lpips):
    D = lpips("nat_carphone")
    n = len(D)
    keys = [0, n - 1, n // 2, 5]
    ib = inbetweens(D, keys)
    T = nx.Graph()
    T.add_weighted_edges_from(minimum_spanning_tree(D))
    want = [nx.shortest_path(T, a, b) for a, b in itertools.pairwise(keys)]
    assert [s.tolist() for s in ib.segments] == want
    assert ib.counts.tolist() == [len(w) - 2 for w in want]
    joined = want[0] + [v for w in want[1:] for v in w[1:]]
    assert ib.path.tolist() == joined
    assert len(ib.path) == sum(ib.counts) + len(keys)
    assert ib.cost == pytest.approx(D[ib.path[:-1], ib.path[1:]].sum())
    # consecutive frames are tree edges, i.e. short steps
    steps = D[ib.path[:-1], ib.path[1:]]
    assert steps.max() <= max(w for *_, w in ib.tree) + 1e-15


def test_inbetweens_adjacent_keys_have_none():
    x = np.arange(6.0)
    D = np.abs(x[:, None] - x[None])
    ib = inbetweens(D, [2, 3, 5])
    assert ib.path.tolist() == [2, 3, 4, 5]
    assert ib.counts.tolist() == [0, 1]


@pytest.mark.parametrize(("keys", "msg"), [([1], "two key"), ([1, 1], "differ"),
                                           ([0, 9], "out of range"), ([0, 1.5], "index")])
def test_inbetweens_bad_keys(keys, msg):
    with pytest.raises(ReseqError, match=msg):
        inbetweens(np.ones((4, 4)) - np.eye(4), keys)


def test_inbetweens_with_a_given_tree_equal_the_computed_ones(clip_frames):
    """A caller that keeps the tree (the studio) gets exactly what a fresh call gives."""
    from reseq.distances import distance_matrix
    from reseq.graph import inbetweens, minimum_spanning_tree

    D = distance_matrix(clip_frames("nat_bikes_a", size=128), progress=False)
    tree = minimum_spanning_tree(D)
    for keys in ([0, 29], [3, 17, 9, 25], [5, 20, 5]):
        a, b = inbetweens(D, keys), inbetweens(D, keys, tree=tree)
        assert a.path.tolist() == b.path.tolist() and a.counts.tolist() == b.counts.tolist()
        assert a.cost == b.cost
    with pytest.raises(ReseqError, match="spanning tree"):
        inbetweens(D, [0, 1], tree=tree[:-1])
