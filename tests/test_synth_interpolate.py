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


# --- the warp render: real frames warped by optical flow towards the decoded in-between -------

CVJOINT = "cyc_kivy_cvjoint"  # a rendered constant-velocity joint turning: real, steady motion
HOLE = (8, 12)  # leave-out window: frames 9, 10, 11 held out, 8 and 12 given
# a spatial code (8 x 8 x 8) trains to a usable model of this clip in ~10 s on one core; the
# default global code collapses to the clip's mean frame in that budget
JOINT_TRAINING = {"size": 64, "latent": 8, "grid": 8, "epochs": 40, "batch": 4, "lr": 1e-3,
                  "beta": 0.001}


@pytest.fixture(scope="module")
def joint(clip_frames):
    """The joint clip at long edge 96, and a VAE trained on it minus the held-out frames."""
    from reseq.synth import train_vae

    frames = clip_frames(CVJOINT, size=96).array
    keep = np.array([i for i in range(len(frames)) if not HOLE[0] < i < HOLE[1]])
    model = train_vae(frames[keep], **JOINT_TRAINING, seed=0, show_progress=False).model
    return frames, model


def test_warp_render_shape_range_and_determinism(joint):
    from reseq.synth import interpolate

    frames, model = joint
    a, b = frames[HOLE[0]], frames[HOLE[1]]
    out = interpolate(model, a, b, 3, render="warp")
    assert out.shape == (3, *a.shape) and out.dtype == np.uint8
    assert np.array_equal(out, interpolate(model, a, b, 3, render="warp"))
    # every output pixel is a bilinear mix of real endpoint pixels: within the images' range
    lo = min(a.min(), b.min())
    hi = max(a.max(), b.max())
    assert out.min() >= lo and out.max() <= hi
    # another output size: flows are rescaled, not recomputed
    assert interpolate(model, a, b, 2, render="warp", out_hw=(30, 40)).shape == (2, 30, 40, 3)


def test_warp_render_endpoints_exact(joint):
    from reseq.synth import decode, encode
    from reseq.synth.interpolate import render_from_guides

    frames, model = joint
    a, b = frames[HOLE[0]], frames[HOLE[1]]
    rec = decode(model, encode(model, np.stack([a, b])), out_hw=(48, 64))
    for render in ("warp", "composite"):
        out = render_from_guides(a, b, rec[0], rec[1], rec, [0.0, 1.0], render=render)
        assert np.array_equal(out[0], a) and np.array_equal(out[1], b)


def test_warp_inbetween_beats_the_crossfade_on_real_motion(joint):
    """The held-out middle frame of a gap-4 hole of the turning joint: warping the real end
    frames towards the decoded in-between lands closer to the truth than ghosting them."""
    from reseq.features import lpips_pair
    from reseq.synth import interpolate

    frames, model = joint
    a, b = frames[HOLE[0]], frames[HOLE[1]]
    truth = frames[HOLE[0] + 2]
    warp = interpolate(model, a, b, 3, render="warp")[1]
    fade = crossfade(a, b, 3)[1]
    assert lpips_pair(warp, truth, "alex") < lpips_pair(fade, truth, "alex")


def test_flow_without_opencv_is_one_clear_error(monkeypatch):
    """OpenCV is optional (``reseq[flow]``): without it the flow renders say how to get it."""
    import sys

    from reseq.synth.interpolate import optical_flow

    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    img = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ReseqError, match=r"reseq\[flow\]"):
        optical_flow(img, img)
