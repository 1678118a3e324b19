"""Shortest Hamiltonian paths and cycles: exactness, endpoints, the open-clip traps, real LPIPS."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reseq.errors import ReseqError
from reseq.graph import EXACT_MAX, loop, order, path_cost
from reseq.graph import tsp as tsp_mod


@pytest.fixture(scope="module")
def lpips(clip_frames):
    """LPIPS (alex) matrix of a dev clip at 64 px, cached per module."""
    from reseq import distance_matrix

    cache: dict = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = distance_matrix(clip_frames(name), metric="lpips", net="alex",
                                          progress=False)
        return cache[name]

    return get


def _random_sq(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, 3))
    return ((x[:, None] - x[None]) ** 2).sum(-1)


def _brute(D: np.ndarray, start=None, end=None, closed=False) -> float:
    n = len(D)
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.intp)
    if closed:
        perms = perms[perms[:, 0] == 0]
    if start is not None:
        perms = perms[perms[:, 0] == start]
    if end is not None:
        perms = perms[perms[:, -1] == end]
    c = D[perms[:, :-1], perms[:, 1:]].sum(1)
    if closed:
        c = c + D[perms[:, -1], perms[:, 0]]
    return float(c.min())


def _matrices(lpips):
    real = lpips("px_wes_archer_die")  # 13 frames
    return [("random7", _random_sq(7, 1)), ("random9", _random_sq(9, 2)),
            ("lpips8", real[:8, :8]), ("lpips9", real[2:11, 2:11])]


@pytest.mark.parametrize("case", ["free", "start", "end", "both", "cycle"])
def test_exact_matches_brute_force(lpips, case):
    for _, D in _matrices(lpips):
        n = len(D)
        kw = {"free": {}, "start": {"start": 2}, "end": {"end": 1},
              "both": {"start": n - 1, "end": 3}, "cycle": None}[case]
        if kw is None:
            p = loop(D)
            want = _brute(D, closed=True)
        else:
            p = order(D, **kw)
            want = _brute(D, **kw)
            assert p.order[0] == kw.get("start", p.order[0])
            assert p.order[-1] == kw.get("end", p.order[-1])
        assert sorted(p.order.tolist()) == list(range(n))
        assert p.cost == pytest.approx(want, rel=1e-12, abs=1e-15)
        assert p.cost == pytest.approx(path_cost(D, p.order, closed=p.closed))


@pytest.mark.parametrize("method", ["auto", "local"])
def test_heuristic_finds_the_optimum_on_small_instances(lpips, monkeypatch, method):
    """With the exact solver switched off, the heuristic still finds Held-Karp's optimum."""
    D = lpips("px_wes_archer_die")[:12, :12]
    R = _random_sq(12, 5)
    exact = {(k, i): (order(M, **kw) if kw is not None else loop(M)).cost
             for i, M in enumerate((D, R))
             for k, kw in {"free": {}, "both": {"start": 4, "end": 8}, "cyc": None}.items()}
    monkeypatch.setattr(tsp_mod, "EXACT_MAX", 2)
    for (k, i), want in exact.items():
        M = (D, R)[i]
        kw = {"free": {}, "both": {"start": 4, "end": 8}, "cyc": None}[k]
        got = (order(M, method=method, **kw) if kw is not None
               else loop(M, method=method)).cost
        assert got == pytest.approx(want, rel=1e-9), (k, i)


def test_zero_distances_are_edges():
    x = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 5.0, 5.0, 3.0, 4.0, 4.0, 2.0, 3.0, 6.0, 7.0, 0.0])
    D = (x[:, None] - x[None]) ** 2
    p = order(D)  # N = 15: heuristic; optimum walks the sorted values: cost = 7
    assert p.cost == pytest.approx(7.0)
    c = loop(D[:9, :9])
    assert c.cost == pytest.approx(_brute(D[:9, :9], closed=True))


def test_path_object():
    D = _random_sq(6, 0)
    p = order(D, start=0)
    assert not p.closed and len(p.steps) == 5 and len(p) == 6
    assert p.max_step == pytest.approx(p.steps.max())
    assert p.cost == pytest.approx(p.steps.sum())
    c = loop(D)
    assert c.closed and len(c.steps) == 6 and c.order[0] == 0
    with pytest.raises(ValueError):
        p.order[0] = 3  # read-only


@pytest.mark.parametrize(("D", "kw", "msg"), [
    (np.zeros((3, 4)), {}, "square"),
    (np.array([[0.0, np.nan], [np.nan, 0.0]]), {}, "NaN"),
    (np.array([[0.0, -1.0], [-1.0, 0.0]]), {}, "negative"),
    (np.array([[0.0, 1.0], [2.0, 0.0]]), {}, "symmetric"),
    (np.zeros((1, 1)), {}, "at least 2"),
    (np.ones((3, 3)), {"start": 3}, "out of range"),
    (np.ones((3, 3)), {"start": 1, "end": 1}, "different"),
    (np.ones((3, 3)), {"start": True}, "frame index"),
    ([["a", "b"], ["c", "d"]], {}, "numeric"),
])
def test_bad_input(D, kw, msg):
    with pytest.raises(ReseqError, match=msg):
        order(D, **kw)


def test_loop_needs_three_frames():
    with pytest.raises(ReseqError, match="at least 3"):
        loop(np.ones((2, 2)) - np.eye(2))


def test_reconstructs_shuffled_clip_with_ends_given(lpips):
    """A shuffled non-cyclic clip, ends given: honoured, and no longer than the true order."""
    from reseq.evaluate import kendall_tau_distance

    for name in ("r3d_earth_a", "nat_carphone"):
        D = lpips(name)
        n = len(D)
        perm = np.random.default_rng(3).permutation(n)
        Ds = D[np.ix_(perm, perm)]
        inv = np.argsort(perm)
        p = order(Ds, start=int(inv[0]), end=int(inv[n - 1]))
        assert p.order[0] == inv[0] and p.order[-1] == inv[n - 1]
        true_cost = path_cost(D, np.arange(n))
        assert p.cost <= true_cost + 1e-12
        tau = kendall_tau_distance(perm[p.order])
        assert tau < 0.1, (name, tau)


@pytest.mark.parametrize("name", ["nat_city_a", "r3d_earth_b"])
def test_endpoints_in_mid_motion(lpips, name):
    """Fixed ends in the middle of an open clip: never worse than out-and-back constructions."""
    D = lpips(name)
    n = len(D)
    for s, t in ((n // 3, 2 * n // 3), (2 * n // 3, n // 4), (n // 2, n // 2 + 1)):
        p = order(D, start=s, end=t)
        assert p.order[0] == s and p.order[-1] == t
        lo, hi = min(s, t), max(s, t)
        for parity in (0, 1):
            ob = tsp_mod._out_and_back(list(range(n)), lo, hi, parity)
            if s > t:
                ob = ob[::-1]
            assert ob[0] == s and ob[-1] == t and sorted(ob) == list(range(n))
            assert p.cost <= path_cost(D, ob) + 1e-12
        # going from s to one end, jumping back and walking on to t is the trap: longer
        if s < t:
            trap = [*range(s, -1, -1), *(v for v in range(n) if v > s and v != t), t]
            assert p.cost < path_cost(D, trap)


@pytest.mark.parametrize("name", ["r3d_bigbuckbunny", "cart_synfig_eye_open"])
def test_open_clip_cycle_is_out_and_back(lpips, name):
    """The open-clip cycle trap: loop must beat the walk-and-jump and the out-and-back tours."""
    D = lpips(name)
    n = len(D)
    c = loop(D)
    assert sorted(c.order.tolist()) == list(range(n))
    walk_and_jump = path_cost(D, np.arange(n), closed=True)
    ob = [*range(0, n, 2), *sorted(set(range(n)) - set(range(0, n, 2)), reverse=True)]
    assert sorted(ob) == list(range(n))
    assert c.cost <= path_cost(D, ob, closed=True) + 1e-12
    assert c.cost < walk_and_jump
    # no single step anywhere near the clip's end-to-start jump, and the loop closes smoothly
    assert c.max_step < D[0, n - 1]
    assert c.steps[-1] <= c.steps[:-1].max()


def test_cyclic_clip_loop_closes(lpips):
    D = lpips("cyc_kivy_cube")
    c = loop(D)
    assert c.steps[-1] <= c.steps[:-1].max()
    assert c.cost <= path_cost(D, np.arange(len(D)), closed=True) + 1e-12


@pytest.fixture(scope="module")
def lpips300(clip_frames):
    """LPIPS (alex) of 309 real frames: five dev clips at 64 x 48, concatenated."""
    from PIL import Image

    from reseq import distance_matrix

    names = ("r3d_bigbuckbunny", "r3d_earth_a", "nat_carphone", "nat_city_a", "r3d_explosion")
    imgs = [np.asarray(Image.fromarray(a).resize((64, 48))) for nm in names
            for a in clip_frames(nm).array]
    return distance_matrix(np.stack(imgs), metric="lpips", net="alex", progress=False)


def _no_clock():
    raise AssertionError("the default solver must not read the clock")


def test_deterministic_under_seed(lpips300, monkeypatch):
    """Same D and seed: the bit-identical order, and no clock is consulted (so machine load
    cannot change it); another seed may differ but is as good."""
    import time

    D = lpips300
    n = len(D)
    assert n > 300
    monkeypatch.setattr(time, "perf_counter", _no_clock)
    monkeypatch.setattr(time, "time", _no_clock)
    monkeypatch.setattr(time, "monotonic", _no_clock)
    for kw in ({}, {"start": n // 3, "end": 2 * n // 3}, None):
        run = (lambda s, kw=kw: loop(D, seed=s)) if kw is None else (
            lambda s, kw=kw: order(D, seed=s, **kw))
        a, b = run(0), run(0)
        assert np.array_equal(a.order, b.order), kw
        assert a.cost == b.cost
        c = run(1)
        assert sorted(c.order.tolist()) == list(range(n))
        assert abs(c.cost / a.cost - 1) < 0.01, kw
    monkeypatch.undo()
    # "local" (the evaluation protocol's choice) is the same deterministic solver
    R = _random_sq(150, 7)
    a = order(R, start=3, method="local", seed=1, time_budget=3600)
    assert np.array_equal(a.order, order(R, start=3, seed=1).order)
    assert np.array_equal(loop(R, seed=2).order, loop(R, seed=2, method="local").order)


def test_same_result_on_one_core(lpips300, monkeypatch):
    """The parallel runs are fixed in number: one core gives the order two cores give."""
    D = lpips300[:200, :200]
    a, b = order(D, start=3, end=150), loop(D)
    monkeypatch.setattr(tsp_mod.os, "cpu_count", lambda: 1)
    assert np.array_equal(order(D, start=3, end=150).order, a.order)
    assert np.array_equal(loop(D).order, b.order)


def test_candidates_join_clips(lpips300):
    """Alpha-nearness candidates hold the edges that join clips: the optimal path steps from
    one clip to another, but every nearest neighbour of a clip's last frame is in its clip."""
    D = lpips300
    near = tsp_mod._neighbours(D, tsp_mod._K + tsp_mod._KA)
    cand = tsp_mod._candidates(D)
    assert cand.shape == near.shape
    for i in range(len(D)):
        row = cand[i]
        assert len(set(row.tolist())) == len(row) and i not in row
        assert np.all(np.diff(D[i, row]) >= 0)  # sorted by distance: the search relies on it
        assert set(near[i, :tsp_mod._K].tolist()) <= set(row.tolist())
    p = order(D).order
    steps = list(zip(p[:-1].tolist(), p[1:].tolist()))
    miss = lambda nb: sum(b not in nb[a] and a not in nb[b] for a, b in steps)  # noqa: E731
    assert miss(cand) < miss(near)


def test_fast_tsp_method(lpips):
    """The optional (timing-dependent) fast-tsp start honours the ends and is never worse than
    a plain copy of its own tour would be: it is one more candidate for our local search."""
    D = lpips("nat_city_a")
    n = len(D)
    p = order(D, start=n // 3, end=2 * n // 3, method="fast-tsp")
    assert p.order[0] == n // 3 and p.order[-1] == 2 * n // 3
    assert sorted(p.order.tolist()) == list(range(n))
    c = loop(D, method="fast-tsp", time_budget=5.0)
    assert c.cost <= loop(D).cost * 1.01


def test_bad_method_and_budget():
    D = _random_sq(20, 0)
    with pytest.raises(ReseqError, match="method"):
        order(D, method="fast")
    with pytest.raises(ReseqError, match="time_budget"):
        loop(D, time_budget=0)
    for bad in (0, -1, float("nan"), "lots"):
        with pytest.raises(ReseqError, match="effort"):
            order(D, effort=bad)


def test_effort_shortens_a_free_path(lpips300):
    """More effort means longer searches for every population member: on 400 random points in
    the plane (where the search has work to do) the free path gets shorter, 14.652, 14.648,
    14.642 (not guaranteed in general: the evolution may end elsewhere); effort 1 is the
    default."""
    x = np.random.default_rng(1).random((400, 2))
    D = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    costs = [order(D, effort=e).cost for e in (0.02, 0.25, 1.0)]
    assert costs[0] >= costs[1] >= costs[2] and costs[0] > costs[2]
    assert np.array_equal(order(lpips300, effort=1.0).order, order(lpips300).order)


def test_exact_threshold_is_fast():
    import time

    D = _random_sq(EXACT_MAX, 0)
    t = time.perf_counter()
    order(D)
    loop(D)
    assert time.perf_counter() - t < 5.0


def test_flip_budget_ends_the_search(monkeypatch):
    """The work budget is real: with no flips allowed the search makes no kicks at all (the
    same path as with no kicks allowed), and the default budget finds a shorter one."""
    x = np.random.default_rng(1).random((400, 2))
    D = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    full = order(D).cost
    monkeypatch.setattr(tsp_mod, "_FLIPS", 0)
    no_flips = order(D).order
    monkeypatch.setattr(tsp_mod, "_FLIPS", 250)
    monkeypatch.setattr(tsp_mod, "_KICK_CAP", 0.0)
    no_kicks = order(D)
    assert np.array_equal(no_flips, no_kicks.order)
    assert full < no_kicks.cost


def test_near_optimal_on_random_points():
    """N = 200 random points: the default run within 0.5% of a run with 4x the kicks."""
    D = _random_sq(200, 11)
    assert order(D, start=5).cost <= order(D, start=5, seed=1, effort=4).cost * 1.005
    assert loop(D).cost <= loop(D, seed=1, effort=4).cost * 1.005


def test_one_fixed_end_heuristic(lpips):
    """N > 12: a fixed end only is the reversed fixed-start problem; tiny sizes work too."""
    D = lpips("nat_carphone")
    s = order(D, start=17)
    e = order(D, end=17)
    assert s.order[0] == 17 and e.order[-1] == 17
    assert e.cost == pytest.approx(s.cost, rel=1e-9)
    assert s.cost >= order(D).cost - 1e-12
    assert order(D[:2, :2], end=0).order.tolist() == [1, 0]
    assert loop(D[:3, :3]).order.tolist() == [0, 1, 2]


def test_warm_up_loads_the_search_kernels():
    # the CLI calls warm_up in a thread while frames decode; it must leave every kernel of a
    # real solve loaded, or the solve pays the load again
    import subprocess
    import sys

    code = ("from reseq.graph import tsp, _kernels as K, _eax as E; tsp.warm_up(); "
            "print(all(len(f.signatures) > 0 for f in (K._ils, K.ascent, K.alpha_nearest, "
            "K._local_search, K.prim, K.neighbour_distances, E.eax, E.to_adj, E.to_tour)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
