"""Smooth sub-sequences (paper §5.4, §6) and even sampling along a path."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from reseq import sequences
from reseq.errors import ReseqError
from reseq.sequences import sample_evenly, subsequences


@pytest.fixture(scope="module")
def mixed(clip_frames):
    """Real frames of three clips at 64 px, concatenated and shuffled, and their LPIPS matrix."""
    from reseq import distance_matrix

    parts = [clip_frames(name).array for name in
             ("r3d_earth_a", "cart_synfig_eye_open", "nat_city_b")]
    arr = np.concatenate(parts)
    perm = np.random.default_rng(0).permutation(len(arr))
    return distance_matrix(arr[perm], progress=False)


def _cost(D, p, objective):
    st = D[p[:-1], p[1:]]
    return float(st.sum() if objective == "sum" else st.max())


def _brute(D, length, count, objective, overlap):
    """Every sequence, ranked by (cost, other cost); greedy picks under the overlap rule."""
    n = len(D)
    rows = [p for p in itertools.permutations(range(n), length) if p[0] < p[-1]]
    other = "max" if objective == "sum" else "sum"
    rows.sort(key=lambda p: (_cost(D, np.array(p), objective), _cost(D, np.array(p), other)))
    cap = min(int(np.floor(overlap * length + 1e-9)), length - 1)
    picks: list[set] = []
    costs = []
    for p in rows:
        if len(picks) == count:
            break
        if all(len(set(p) & q) <= cap for q in picks):
            picks.append(set(p))
            costs.append(_cost(D, np.array(p), objective))
    return costs


def _greedy_best(D, length, objective):
    n = len(D)
    best = np.inf
    for s in range(n):
        p = [s]
        for _ in range(length - 1):
            row = D[p[-1]].copy()
            row[p] = np.inf
            p.append(int(np.argmin(row)))
        best = min(best, _cost(D, np.array(p), objective))
    return best


def _window_best(D, path, length, objective):
    return min(_cost(D, path[i:i + length], objective) for i in range(len(path) - length + 1))


@pytest.mark.parametrize("objective", ["sum", "max"])
def test_exact_on_small_n_against_brute_force(mixed, objective):
    rng = np.random.default_rng(1)
    for n, length, overlap in ((7, 4, 0.5), (8, 5, 0.0), (9, 3, 0.34)):
        idx = rng.choice(len(mixed), n, replace=False)
        D = mixed[np.ix_(idx, idx)]
        got = subsequences(D, length, count=4, objective=objective, overlap=overlap)
        want = _brute(D, length, 4, objective, overlap)
        assert [s.cost for s in got] == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_heuristic_near_brute_force_on_small_n(mixed, monkeypatch):
    """Forced off the exact path, the search still finds the optimum on small real instances
    (or comes within 5 %)."""
    monkeypatch.setattr(sequences, "EXACT_SEQUENCES", 0)
    rng = np.random.default_rng(2)
    for _ in range(3):
        idx = rng.choice(len(mixed), 10, replace=False)
        D = mixed[np.ix_(idx, idx)]
        got = subsequences(D, 5, count=1)[0].cost
        want = _brute(D, 5, 1, "sum", 0.5)[0]
        assert want - 1e-12 <= got <= want * 1.05


@pytest.mark.parametrize("objective", ["sum", "max"])
@pytest.mark.parametrize("length", [6, 16])
def test_valid_and_never_worse_than_baselines(mixed, objective, length):
    from reseq import order

    D = mixed
    res = subsequences(D, length, count=6, objective=objective, overlap=0.5)
    assert 1 <= len(res) <= 6
    for s in res:
        assert len(s.frames) == length and len(set(s.frames.tolist())) == length
        assert s.steps == pytest.approx(D[s.frames[:-1], s.frames[1:]])
        assert s.cost == pytest.approx(_cost(D, s.frames, objective))
    for a, b in itertools.combinations(res, 2):
        assert len(set(a.frames.tolist()) & set(b.frames.tolist())) <= 0.5 * length
    assert [s.cost for s in res] == sorted(s.cost for s in res)
    path = order(D).order
    greedy = _greedy_best(D, length, objective)
    window = _window_best(D, path, length, objective)
    assert res[0].cost <= greedy + 1e-12
    assert res[0].cost <= window + 1e-12
    with_path = subsequences(D, length, count=1, objective=objective, path=path)
    assert with_path[0].cost <= min(greedy, window) + 1e-12  # guaranteed: both are seeds


def test_exclude_and_errors(mixed):
    banned = np.zeros(len(mixed), dtype=bool)
    banned[::2] = True
    res = subsequences(mixed, 5, count=3, exclude=banned)
    assert all(not banned[s.frames].any() for s in res)
    with pytest.raises(ReseqError, match="length"):
        subsequences(mixed[:4, :4], 5)
    with pytest.raises(ReseqError, match="objective"):
        subsequences(mixed, 3, objective="mean")
    with pytest.raises(ReseqError, match="overlap"):
        subsequences(mixed, 3, overlap=1.5)
    one = subsequences(mixed[:1, :1], 1)
    assert one[0].frames.tolist() == [0] and one[0].cost == 0.0


def test_sample_evenly_spacing(mixed):
    from reseq import order

    p = order(mixed)
    arc = np.concatenate(([0.0], np.cumsum(p.steps)))
    for m in (2, 5, 12):
        s = sample_evenly(p, mixed, m)
        pos = [p.order.tolist().index(v) for v in s]
        assert len(s) == m and pos == sorted(pos) and len(set(pos)) == m
        assert pos[0] == 0 and pos[-1] == len(p.order) - 1  # a path keeps both ends
        gaps = np.diff(arc[pos])
        ideal = arc[-1] / (m - 1)
        assert np.abs(gaps - ideal).max() <= 2 * p.steps.max() + 1e-12
    assert sample_evenly(p, mixed, len(p.order)).tolist() == p.order.tolist()
    with pytest.raises(ReseqError):
        sample_evenly(p, mixed, 0)


def test_cli_subsequences_min_gap_and_overlap(run_cli, dev_clips, tmp_path):
    out = tmp_path / "clips"
    r = run_cli("subsequences", str(dev_clips / "r3d_earth_a"), "--size", "64", "--length", "5",
                "--count", "3", "--min-gap", "4", "-o", str(out), "--format", "gif")
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "index.json").read_text())
    clips = [[f["source_index"] for f in c["frames"]] for c in doc["clips"]]
    assert len(clips) == 3 and all(len(c) == 5 == len(set(c)) for c in clips)
    for a, b in itertools.combinations(clips, 2):
        assert min(abs(x - y) for x in a for y in b) > 4
    assert all((out / c["file"]).is_file() for c in doc["clips"])
    # the index is never overwritten without --force
    r = run_cli("subsequences", str(dev_clips / "r3d_earth_a"), "--size", "64", "--length", "5",
                "-o", str(out))
    assert r.returncode != 0 and r.stderr.startswith("reseq: error:")
    r = run_cli("subsequences", str(dev_clips / "r3d_earth_a"), "--size", "64", "--length", "4",
                "--count", "4", "--overlap", "0.25", "-o", str(tmp_path / "png"), "--format",
                "png")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "png" / "index.json").read_text())
    sets = [{f["source_index"] for f in c["frames"]} for c in doc["clips"]]
    assert all(len(a & b) <= 1 for a, b in itertools.combinations(sets, 2))
    assert len(list((tmp_path / "png" / doc["clips"][0]["file"]).glob("*.png"))) == 4
    # --force may write over an earlier run in another format, never into a user's folder
    r = run_cli("subsequences", str(dev_clips / "r3d_earth_a"), "--size", "64", "--length", "4",
                "--count", "2", "-o", str(tmp_path / "png"), "--force")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "png" / "clip_01.mp4").is_file()
    note = tmp_path / "png" / "notes.txt"
    note.write_text("mine")
    r = run_cli("subsequences", str(dev_clips / "r3d_earth_a"), "--size", "64", "--length", "4",
                "-o", str(tmp_path / "png"), "--force")
    assert r.returncode == 2 and "did not write (notes.txt)" in r.stderr
    assert note.read_text() == "mine"


def test_never_worse_than_greedy_with_many_ties():
    """Exact ties (duplicate frames, quantised distances) do not change the greedy baseline
    the search starts from: every start's chain is the np.argmin chain."""
    rng = np.random.default_rng(3)
    D = rng.integers(0, 4, (40, 40)).astype(float)
    D = D + D.T
    np.fill_diagonal(D, 0.0)
    for objective in ("sum", "max"):
        for length in (4, 9):
            got = subsequences(D, length, count=1, objective=objective)[0].cost
            assert got <= _greedy_best(D, length, objective)
