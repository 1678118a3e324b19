"""Gap filling on real dev-clip frames: threshold, counts, and the largest step shrinking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reseq.errors import ReseqError
from reseq.frames import load_frames
from reseq.synth import (
    consecutive_lpips,
    default_gap_threshold,
    gap_counts,
    load_training_frames,
    synthesize_gaps,
    train_vae,
)

CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "dev-clips"
ROBOT = CLIPS / "cyc_kenney_robot_walk"

pytestmark = pytest.mark.skipif(not CLIPS.is_dir(), reason="needs ../shared/dev-clips")


@pytest.fixture(scope="module")
def robot():
    return load_frames(ROBOT, size=64, progress=False).array


@pytest.fixture(scope="module")
def model():
    images, _, classes = load_training_frames([ROBOT, CLIPS / "cyc_kenney_zombie_walk"], size=32)
    return train_vae(images, classes=classes, size=32, latent=16, epochs=10, batch=8, lr=2e-3,
                     beta=1.0, recon="bce", seed=0, show_progress=False).model


def _lpips_matrix(images):
    from reseq.features import lpips_embedding

    e = lpips_embedding(images).astype(np.float64)
    sq = (e**2).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2 * e @ e.T, 0) * (1 - np.eye(len(e)))


def test_default_threshold_is_a_quantile_of_nearest_neighbours(robot):
    D = _lpips_matrix(robot)
    nn = np.sort(D + np.diag(np.full(len(D), np.inf)), axis=1)[:, 0]
    assert default_gap_threshold(D, 1.0) == pytest.approx(nn.max())
    assert default_gap_threshold(D, 0.0) == pytest.approx(nn.min())
    assert nn.min() < default_gap_threshold(D) <= nn.max()
    with pytest.raises(ReseqError):
        default_gap_threshold(D[:3, :4])
    with pytest.raises(ReseqError):
        default_gap_threshold(D, q=1.5)


def test_gap_counts_proportional_and_capped():
    steps = np.array([0.05, 0.1, 0.15, 0.31, 0.99, 10.0])
    assert gap_counts(steps, 0.1, max_insert=4).tolist() == [0, 0, 1, 3, 4, 4]
    assert gap_counts(steps, 0.1, max_insert=0).tolist() == [0] * 6
    with pytest.raises(ReseqError):
        gap_counts(steps, 0.0)


def test_consecutive_lpips_matches_pairs(robot):
    from reseq.features import lpips_pair

    d = consecutive_lpips(robot[:3])
    assert d == pytest.approx([lpips_pair(robot[0], robot[1]), lpips_pair(robot[1], robot[2])],
                              abs=1e-4)
    assert len(consecutive_lpips(robot[:3], loop=True)) == 3


def test_synthesize_gaps_shrinks_the_largest_step(robot, model):
    # a walk cycle with frames dropped: 0 1 [2 3 missing] 4 5 [6 missing] 7
    seq = robot[[0, 1, 4, 5, 7]]
    steps = consecutive_lpips(seq)
    D = _lpips_matrix(robot)
    res = synthesize_gaps(seq, steps, model, D=D, q=0.95)  # render="composite"
    assert res.threshold == pytest.approx(default_gap_threshold(D, 0.95))
    assert res.made == int(res.inserted_per_gap.sum()) > 0
    assert res.inserted_per_gap[int(np.argmax(steps))] > 0
    assert np.array_equal(res.images[~res.synthetic], seq)
    assert res.largest_after < res.largest_before
    assert "largest step" in res.summary()
    # plain decoded frames are blurrier than the composite default and the residual render
    plain = synthesize_gaps(seq, steps, model, threshold=res.threshold, render="decode")
    resid = synthesize_gaps(seq, steps, model, threshold=res.threshold, render="residual")
    assert plain.made == res.made == resid.made
    assert plain.largest_after > max(res.largest_after, resid.largest_after)
    assert resid.largest_after < resid.largest_before
    # loop: one more step, last to first
    loop = synthesize_gaps(seq, consecutive_lpips(seq, loop=True), model, threshold=res.threshold)
    assert len(loop.steps_after) == len(loop.images)
    with pytest.raises(ReseqError):
        synthesize_gaps(seq, steps, model)
