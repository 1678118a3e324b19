"""slerp / lerp / cross-fade properties, and interpolate's output on real frames."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reseq.errors import ReseqError
from reseq.synth import crossfade, lerp, slerp


def _unit(rng, d):
    v = rng.normal(size=d)
    return v / np.linalg.norm(v)


def test_slerp_endpoints_exact():
    rng = np.random.default_rng(1)
    z0, z1 = rng.normal(size=64), rng.normal(size=64)
    path = slerp(z0, z1, [0.0, 1.0])
    np.testing.assert_allclose(path[0], z0, atol=1e-12)
    np.testing.assert_allclose(path[1], z1, atol=1e-12)


def test_slerp_unit_inputs_stay_on_unit_sphere():
    rng = np.random.default_rng(2)
    for d in (2, 16, 128):
        z0, z1 = _unit(rng, d), _unit(rng, d)
        t = np.linspace(0, 1, 23)
        norms = np.linalg.norm(slerp(z0, z1, t), axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-12)
        # lerp cuts through the ball: strictly shorter in the middle
        assert np.linalg.norm(lerp(z0, z1, 0.5)) < 0.999


def test_slerp_constant_angular_speed():
    rng = np.random.default_rng(3)
    z0, z1 = _unit(rng, 32), _unit(rng, 32)
    path = slerp(z0, z1, np.linspace(0, 1, 11))
    angles = [np.arccos(np.clip(a @ b, -1, 1)) for a, b in itertools.pairwise(path)]
    np.testing.assert_allclose(angles, angles[0], rtol=1e-9)


def test_slerp_matches_formula():
    z0, z1, t = np.array([1.0, 2.0, 0.5]), np.array([-0.5, 1.0, 3.0]), 0.3
    a = np.arccos(z0 @ z1 / np.linalg.norm(z0) / np.linalg.norm(z1))
    expected = np.sin((1 - t) * a) / np.sin(a) * z0 + np.sin(t * a) / np.sin(a) * z1
    np.testing.assert_allclose(slerp(z0, z1, t), expected, atol=1e-12)


def test_slerp_collinear_falls_back_to_lerp():
    z0 = np.array([1.0, 2.0, -1.0])
    t = np.linspace(0, 1, 5)
    for z1 in (3 * z0, z0 + 1e-9, -2 * z0):
        out = slerp(z0, z1, t)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, lerp(z0, z1, t), atol=1e-12)
    assert slerp(np.zeros(3), z0, 0.5).tolist() == (0.5 * z0).tolist()


def test_slerp_scalar_and_vector_t():
    z0, z1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert slerp(z0, z1, 0.5).shape == (2,)
    assert slerp(z0, z1, np.array([0.1, 0.2, 0.3])).shape == (3, 2)


def test_slerp_bad_shapes():
    with pytest.raises(ReseqError):
        slerp(np.zeros(3), np.zeros(4), 0.5)


def test_crossfade_values():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.full((2, 2, 3), 100, np.uint8)
    mids = crossfade(a, b, 4)
    assert mids.shape == (4, 2, 2, 3)
    assert mids[:, 0, 0, 0].tolist() == [20, 40, 60, 80]


def test_composite_weights_follow_the_decoded_inbetween():
    from reseq.synth.interpolate import composite_weights

    rng = np.random.default_rng(0)
    rec0, rec1 = rng.random((16, 16, 3)), rng.random((16, 16, 3))
    t = np.array([0.2, 0.5, 0.8])
    # no evidence (both reconstructions equal): the cross-fade's weights 1 - t everywhere
    w = composite_weights(np.stack([rec0] * 3), rec0, rec0, t)
    assert w.shape == (3, 16, 16) and np.allclose(w, (1 - t)[:, None, None])
    # left half of the in-between looks like rec0, right half like rec1: the weight follows
    mid = rec1.copy()
    mid[:, :8] = rec0[:, :8]
    w = composite_weights(np.stack([mid] * 3), rec0, rec1, t, sigma=1.0)
    assert (w[:, :, :5] > 0.9).all() and (w[:, :, 11:] < 0.1).all()
    assert ((w >= 0) & (w <= 1)).all()
