"""Baseline distance matrices and path heuristics, checked against their reference libraries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.manifold import Isomap, LocallyLinearEmbedding

from reseq.evaluate import baselines as bl


@pytest.fixture(scope="module")
def eye(clip_frames):
    return clip_frames("cart_synfig_eye_open", size=48).array[::2]  # 13 real frames


def test_l2_matches_the_distances_module(eye):
    from reseq.distances import distance_matrix

    D = bl.l2_matrix(eye)
    assert D.shape == (len(eye), len(eye)) and np.all(np.diag(D) == 0)
    # distances' l2 goes through a float32 Gram matrix: ~1e-5 absolute error on close frames
    np.testing.assert_allclose(D, distance_matrix(eye, metric="l2", progress=False),
                               rtol=1e-4, atol=1e-4)


def test_ssim_matrix_matches_scikit_image(eye):
    from skimage.metrics import structural_similarity

    D = bl.ssim_matrix(eye[:4])
    s = structural_similarity(eye[1], eye[3], channel_axis=-1, data_range=255)
    assert D[1, 3] == pytest.approx((1 - s) / 2) and D[3, 1] == D[1, 3]
    assert np.all((D >= 0) & (D <= 1)) and np.all(np.diag(D) == 0)


def _pairwise(y):
    return np.linalg.norm(y[:, None] - y[None], axis=-1)


def test_lle_prefix_of_the_largest_embedding_is_sklearns_embedding(eye):
    x = bl.pixel_vectors(eye)
    (k_used, emb), = bl.manifold_embeddings(eye, "lle", ks=[4], d_max=8)
    assert k_used == 4 and emb.shape == (len(eye), 8)
    for d in (2, 5):
        ref = LocallyLinearEmbedding(n_neighbors=4, n_components=d, eigen_solver="dense",
                                     random_state=0).fit_transform(x)
        np.testing.assert_allclose(_pairwise(emb[:, :d]), _pairwise(ref), atol=1e-6)


def test_isomap_matches_sklearn_where_sklearn_succeeds(eye):
    x = bl.pixel_vectors(eye)
    (_, emb), = bl.manifold_embeddings(eye, "isomap", ks=[5], d_max=12)
    ref = Isomap(n_neighbors=5, n_components=2, eigen_solver="dense").fit_transform(x)
    np.testing.assert_allclose(_pairwise(emb[:, :2]), _pairwise(ref), rtol=1e-6, atol=1e-8)


def test_sweep_covers_171_settings_and_clamps_small_clips(eye):
    settings = list(bl.manifold_matrices(eye[:6], "isomap"))
    assert len(settings) == 171
    for k, d, k_used, d_used, D in settings:
        assert k_used == min(k, 4) and d_used == min(d, 5) and D.shape == (6, 6)


def test_greedy_chain_and_two_opt():
    rng = np.random.default_rng(1)
    pts = rng.random((9, 2))
    D = _pairwise(pts)
    chain = bl.greedy_chain(D, 3)
    assert chain[0] == 3 and sorted(chain) == list(range(9))
    for a, b in itertools.pairwise(chain[:-1]):  # each step goes to the nearest unvisited frame
        rest = [j for j in range(9) if j not in chain[: list(chain).index(a) + 1]]
        assert D[a, b] == min(D[a, j] for j in rest)
    better = bl.two_opt(D, chain)
    assert better[0] == 3 and sorted(better) == list(range(9))
    assert bl.path_cost(D, better) <= bl.path_cost(D, chain)
    fixed = bl.two_opt(D, chain, fix_end=True)
    assert fixed[0] == 3 and fixed[-1] == chain[-1]
    # 2-opt optimum on a line: the sorted order from one end
    line = _pairwise(np.c_[np.array([0, 5, 1, 4, 2, 3.0]), np.zeros(6)])
    assert bl.two_opt(line, [0, 1, 2, 3, 4, 5]).tolist() == [0, 2, 4, 5, 3, 1]
