"""The motion-aware objective of issue 16 (an evaluation row, not the default): its bookkeeping,
its search, and what it does on real clips of the first development set (size 64, few frames)."""

from __future__ import annotations

import numpy as np
import pytest

from reseq.distances import distance_matrix
from reseq.evaluate.kendall import kendall_tau_distance
from reseq.evaluate.motion import (
    MotionObjective,
    _apply,
    _moves,
    improve,
    motion_objective,
    motion_order,
    move_delta,
    objective_cost,
    turn_cost,
)
from reseq.graph import order


@pytest.fixture(scope="module")
def xine_D(clip_frames):
    """LPIPS between 13 real frames (every other frame of r3d_xinelogo, 64 px), shuffled."""
    x = clip_frames("r3d_xinelogo", size=64).array[::2]
    perm = np.random.default_rng(5).permutation(len(x))
    return distance_matrix(x[perm], progress=False), perm


def test_turn_is_the_exact_inner_product_of_steps():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(6, 4))
    D = ((e[:, None] - e[None]) ** 2).sum(-1)
    obj = MotionObjective(D, kappa=0.0, weight=1.0)
    for a, b, c in [(0, 1, 2), (3, 1, 5), (2, 4, 0)]:
        inner = float((e[b] - e[a]) @ (e[c] - e[b]))
        assert float(turn_cost(obj, a, b, c)) == pytest.approx(max(0.0, -inner), rel=1e-9,
                                                               abs=1e-12)
        assert float(turn_cost(obj, a, b, c)) == pytest.approx(float(turn_cost(obj, c, b, a)))


@pytest.mark.parametrize("closed", [False, True])
def test_move_deltas_match_brute_force(xine_D, closed):
    D, _ = xine_D
    n = len(D)
    rng = np.random.default_rng(1)
    o = rng.permutation(n)
    obj = motion_objective(D, o, closed, weight=2.0, quantile=0.5)
    assert obj.kappa > 0  # the hinge is active on some of this path's turns
    base = objective_cost(obj, o, closed)
    moves = list(_moves(n, closed))
    assert {m[0] for m in moves} == {"2opt", "or"}
    for move in moves:
        new = _apply(o, move)
        assert sorted(new.tolist()) == list(range(n))
        if not closed:
            assert new[0] == o[0] and new[-1] == o[-1]
        assert move_delta(obj, o, move, closed) == pytest.approx(
            objective_cost(obj, new, closed) - base, abs=1e-10)


@pytest.mark.parametrize("closed", [False, True])
def test_compiled_search_reaches_the_brute_force_local_optimum(xine_D, closed):
    D, _ = xine_D
    o = np.random.default_rng(2).permutation(len(D))
    obj = motion_objective(D, o, closed, weight=3.0, quantile=0.5)
    q = o.copy()  # reference: best improvement, every move recomputed from scratch
    while True:
        cost = objective_cost(obj, q, closed)
        cands = [(objective_cost(obj, _apply(q, m), closed) - cost, m) for m in _moves(len(q), closed)]
        gain, move = min(cands, key=lambda c: c[0])
        if gain >= -1e-12:
            break
        q = _apply(q, move)
    p = improve(obj, o, closed)
    assert sorted(p.tolist()) == list(range(len(D)))
    if not closed:
        assert p[0] == o[0] and p[-1] == o[-1]
    assert objective_cost(obj, p, closed) == pytest.approx(objective_cost(obj, q, closed),
                                                           rel=1e-9)
    assert objective_cost(obj, p, closed) < objective_cost(obj, o, closed)


def test_motion_objective_undoes_a_reversed_pair_that_lpips_prefers(clip_frames):
    # nat_carphone, every 6th frame from frame 2 (10 frames, 64 px), ends given: the shortest
    # LPIPS path plays frames 7 and 8 backwards; the turn hinge puts them back.
    x = clip_frames("nat_carphone", size=64).array[2::6]
    D = distance_matrix(x, progress=False)
    plain = order(D, start=0, end=len(x) - 1).order
    assert kendall_tau_distance(plain) > 0
    assert plain.tolist() == [0, 1, 2, 3, 4, 5, 6, 8, 7, 9]
    assert motion_order(D, plain).tolist() == list(range(len(x)))


@pytest.mark.parametrize("clip, every", [("px_pingus_bomber", 2), ("px_wes_archer_die", 1),
                                         ("cart_synfig_eye_open", 3), ("r3d_explosion", 5)])
def test_motion_objective_keeps_clips_plain_lpips_gets_right(clip_frames, clip, every):
    x = clip_frames(clip, size=64 if clip != "cart_synfig_eye_open" else 128).array[::every]
    D = distance_matrix(x, progress=False)
    plain = order(D, start=0, end=len(x) - 1).order
    assert plain.tolist() == list(range(len(x)))
    assert motion_order(D, plain).tolist() == list(range(len(x)))


def test_protocol_row_starts_from_the_lpips_path(clip_frames, dev_clips):
    from reseq.evaluate.protocol import Clip, evaluate_frames

    x = clip_frames("nat_carphone", size=64).array[2::6]
    clip = Clip("nat_carphone", dev_clips / "nat_carphone", "natural")
    res, _ = evaluate_frames(clip, x, metrics=["lpips-alex", "lpips-alex-motion"])
    plain, motion = res
    assert (plain.metric, motion.metric) == ("lpips-alex", "lpips-alex-motion")
    assert plain.tau > 0 and plain.failure == "metric"
    assert motion.tau == 0 and motion.failure == ""
    # its costs are under its own objective: LPIPS length plus turns, so at least the length
    assert motion.cost_found >= plain.cost_true * (1 - 1e-9)
    alone, _ = evaluate_frames(clip, x, metrics=["lpips-alex-motion"])
    assert alone[0] == motion
