"""Loops of any length, uniform sampling of a cycle, cycles over subsets."""

from __future__ import annotations

import numpy as np
import pytest

from reseq.errors import ReseqError
from reseq.graph import loop
from reseq.sequences import chain_loop, sample_cycle, subset_loop


def test_chain_loop():
    c = loop(np.abs(np.arange(5.0)[:, None] - np.arange(5.0)[None]))
    out = chain_loop(c, 12)
    assert len(out) == 12 and out[:5].tolist() == c.order.tolist()
    assert out[5:10].tolist() == c.order.tolist() and out[10:].tolist() == c.order[:2].tolist()
    assert chain_loop([3, 1], 1).tolist() == [3]
    with pytest.raises(ReseqError):
        chain_loop([1, 2], 0)


def test_sample_cycle_arclength(clip_frames):
    from reseq import distance_matrix

    D = distance_matrix(clip_frames("cyc_kivy_cube"), progress=False)
    c = loop(D)
    for m in (1, 7, 20, len(D)):
        s = sample_cycle(c, D, m)
        assert len(s) == m and len(set(s.tolist())) == m
        pos = [c.order.tolist().index(v) for v in s]
        assert pos == sorted(pos) and s[0] == c.order[0]
    # arc-length spacing: gaps along the loop are far more even than the worst index spacing
    m = 8
    s = sample_cycle(c, D, m)
    arc = np.concatenate(([0.0], np.cumsum(c.steps)))
    pos = [c.order.tolist().index(v) for v in s]
    gaps = np.diff([*arc[pos], c.cost])
    assert gaps.max() - gaps.min() <= 2 * c.steps.max() + 1e-12
    assert sample_cycle(c, D, m, by="index").tolist() == \
        c.order[np.round(np.arange(m) * len(D) / m).astype(int)].tolist()


def test_sample_cycle_uniform_distances():
    x = np.array([0.0, 1.0, 2.0, 10.0, 11.0, 12.0])
    D = np.abs(x[:, None] - x[None])
    s = sample_cycle(list(range(6)), D, 2)  # total arc 24; marks at 0 and 12
    assert s.tolist() == [0, 5]
    with pytest.raises(ReseqError):
        sample_cycle([0, 1], D, 3)
    with pytest.raises(ReseqError):
        sample_cycle([0, 1, 2], D, 2, by="time")


def test_subset_loop():
    rng = np.random.default_rng(0)
    x = rng.random((30, 2))
    D = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    sub = [3, 17, 4, 29, 8, 11, 0, 22]
    p = subset_loop(D, sub)
    assert sorted(p.order.tolist()) == sorted(sub)
    inner = loop(D[np.ix_(sub, sub)])
    assert p.cost == pytest.approx(inner.cost)
    assert p.cost == pytest.approx(D[p.order, np.roll(p.order, -1)].sum())
    with pytest.raises(ReseqError, match="more than once"):
        subset_loop(D, [1, 1, 2])
    with pytest.raises(ReseqError, match="at least 3"):
        subset_loop(D, [1, 2])
    with pytest.raises(ReseqError, match="outside"):
        subset_loop(D, [1, 2, 30])
