"""Outlier frames (paper §4.3) on real LPIPS matrices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import gengamma

from reseq.errors import ReseqError
from reseq.graph import knn_scores, outliers


@pytest.fixture(scope="module")
def injected(clip_frames):
    """A clip with one frame of another clip inserted in the middle."""
    from reseq import distance_matrix

    base = clip_frames("r3d_earth_a").array
    other = clip_frames("cyc_kenney_robot_walk").array[3]
    import PIL.Image

    other = np.asarray(PIL.Image.fromarray(other).resize(base.shape[2:0:-1]))
    arr = np.concatenate([base[:25], other[None], base[25:]])
    return distance_matrix(arr, progress=False), 25


def test_injected_frame_is_flagged(injected):
    D, bad = injected
    res = outliers(D)
    assert bad in res.indices.tolist()
    assert res.mask[bad] and res.mask.sum() <= 0.2 * len(D)
    assert res.scores[bad] == res.scores.max()
    a, _c, loc, scale = res.params
    assert a > 0 and scale > 0 and loc < res.scores.min()
    assert res.threshold == pytest.approx(gengamma.ppf(0.9, *res.params))
    assert np.array_equal(res.mask, res.scores > res.threshold)
    # the quantile and k are options
    assert outliers(D, quantile=0.99).mask.sum() <= res.mask.sum()
    assert outliers(D, k=3).k == 3


def test_scores_are_mean_knn_distance(injected):
    D, _ = injected
    x = knn_scores(D, 5)
    i = 7
    d = np.sort(np.delete(D[i], i))[:5].mean()
    assert x[i] == pytest.approx(d)


def test_duplicates_score_zero_but_fit_works(clip_frames):
    from reseq import distance_matrix

    arr = clip_frames("nat_carphone").array
    D = distance_matrix(np.concatenate([arr, arr[:3]]), progress=False)
    res = outliers(D, k=1)
    assert res.scores[0] == 0.0 and np.isfinite(res.threshold)


@pytest.mark.parametrize(("D", "kw", "msg"), [
    (np.ones((6, 6)) - np.eye(6), {}, "more than 6"),
    (np.ones((10, 10)) - np.eye(10), {}, "equal"),
    (np.ones((10, 10)) - np.eye(10), {"quantile": 1.0}, "quantile"),
    (np.ones((10, 10)) - np.eye(10), {"k": 0}, "positive"),
])
def test_degenerate(D, kw, msg):
    with pytest.raises(ReseqError, match=msg):
        outliers(D, **kw)
