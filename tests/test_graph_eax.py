"""Edge assembly crossover: AB-cycles, children that are tours, fixed dummy edges, real work."""

from __future__ import annotations

import numpy as np
import pytest

from reseq.graph import _eax, _kernels, order
from reseq.graph import tsp as tsp_mod


def _plane(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, 2))
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


def _edges(adj: np.ndarray) -> set:
    return {(min(u, v), max(u, v)) for u in range(len(adj)) for v in adj[u].tolist()}


@pytest.fixture(scope="module")
def plane():
    """200 random points and four local optima (2-opt, Or-opt, Lin-Kernighan) of random tours."""
    D = _plane(200, 3)
    rng = np.random.default_rng(0)
    nb = tsp_mod._candidates(D)
    tours = []
    for _ in range(4):
        t = rng.permutation(len(D)).astype(np.int64)
        _kernels.local_search(D, np.zeros(1), -1, nb, t, 1e-12)
        tours.append(t)
    return D, nb, tours


def test_ab_cycles_alternate_and_cover_the_difference(plane):
    _, _, tours = plane
    A, B = _eax.to_adj(tours[0]), _eax.to_adj(tours[1])
    n = len(A)
    cyc, cstart = np.empty(4 * n + 8, np.int64), np.empty(2 * n + 2, np.int64)
    k = _eax.ab_cycles(A, B, np.array([7], np.uint64), cyc, cstart)
    assert k > 0
    ea, eb = [], []
    for i in range(k):
        c = cyc[cstart[i]:cstart[i + 1]].tolist()
        assert len(c) >= 4 and len(c) % 2 == 0
        for j in range(len(c)):
            e = (min(c[j], c[(j + 1) % len(c)]), max(c[j], c[(j + 1) % len(c)]))
            (ea if j % 2 == 0 else eb).append(e)
    EA, EB = _edges(A), _edges(B)
    assert sorted(ea) == sorted(EA - EB)  # every differing edge exactly once, of its own tour
    assert sorted(eb) == sorted(EB - EA)


def test_children_are_tours_with_exact_lengths(plane):
    D, nb, tours = plane
    w, nd = np.zeros(1), -1
    out = np.empty((len(D), 2), np.int64)
    state = np.array([11], np.uint64)
    shorter = 0
    for a, b in [(0, 1), (1, 2), (2, 3), (3, 0)]:
        A, B = _eax.to_adj(tours[a]), _eax.to_adj(tours[b])
        cA = _eax.adj_cost(D, w, nd, A)
        c = _eax.eax(D, w, nd, nb, A, B, cA, state, 30, out)
        t = _eax.to_tour(out, 0)
        assert sorted(t.tolist()) == list(range(len(D)))
        assert c == pytest.approx(_eax.adj_cost(D, w, nd, out), rel=1e-12)
        assert c == pytest.approx(_kernels.tour_cost(D, w, nd, t), rel=1e-12)
        shorter += c < cA - 1e-9
    assert shorter > 0  # crossing two local optima beats one of them somewhere
    A = _eax.to_adj(tours[0])
    assert _eax.eax(D, w, nd, nb, A, A.copy(), 1.0, state, 30, out) == np.inf  # no AB-cycle


def test_children_keep_the_fixed_ends():
    """Path with both ends fixed (dummy node n at 0 from s and t, far from the rest): the
    parents share the dummy's two edges, so every child has them."""
    D = _plane(120, 5)
    n, s, t = len(D), 17, 80
    w = np.full(n + 1, 4.0 * D.max())
    w[[s, t, n]] = 0.0
    rng = np.random.default_rng(2)
    nb = np.concatenate((tsp_mod._candidates(D), np.full((n, 1), n)), axis=1)
    nb = np.concatenate((nb, np.argsort(w[:n], kind="stable")[None, : nb.shape[1]]), axis=0)
    rest = np.array([v for v in range(n) if v not in (s, t)], np.int64)
    tours = []
    for _ in range(3):
        tour = np.concatenate(([n, s], rng.permutation(rest), [t])).astype(np.int64)
        _kernels.local_search(D, w, n, nb, tour, 1e-12)
        tours.append(tour)
    out = np.empty((n + 1, 2), np.int64)
    state = np.array([3], np.uint64)
    for a, b in [(0, 1), (1, 2), (2, 0)]:
        A, B = _eax.to_adj(tours[a]), _eax.to_adj(tours[b])
        assert sorted(A[n].tolist()) == sorted([s, t])
        c = _eax.eax(D, w, n, nb, A, B, _eax.adj_cost(D, w, n, A), state, 30, out)
        if np.isfinite(c):
            assert sorted(out[n].tolist()) == sorted([s, t])
            assert sorted(_eax.to_tour(out, n).tolist()) == list(range(n + 1))


def test_evolution_does_real_work(monkeypatch):
    """400 random points: the evolved population beats the same population unevolved."""
    D = _plane(400, 1)
    full = order(D).cost
    monkeypatch.setattr(tsp_mod, "_GENS", 0)
    assert full < order(D).cost


def test_time_budget_still_gives_a_valid_path():
    """A budget that runs out among the population's searches: the members not started are
    dropped, and the path is still a permutation with its ends where asked."""
    D = _plane(600, 2)
    p = order(D, start=3, end=7, time_budget=0.05)
    assert p.order[0] == 3 and p.order[-1] == 7
    assert sorted(p.order.tolist()) == list(range(len(D)))
