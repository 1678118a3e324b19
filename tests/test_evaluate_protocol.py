"""The reconstruction protocol end to end on real dev clips, and the report it writes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from reseq.errors import ReseqError
from reseq.evaluate import dae
from reseq.evaluate.protocol import Clip, _result, evaluate_corpus, read_corpus, score_path
from reseq.evaluate.report import REPORT_FILES, write_report

CLIPS = ["cart_synfig_eye_open", "px_wes_archer_die", "cyc_kenney_robot_walk"]
METRICS = ["l2", "dae", "lle", "isomap", "lpips-alex", "greedy-lpips", "ssim-2opt"]


@pytest.fixture(scope="module")
def corpus(dev_clips, tmp_path_factory) -> Path:
    """Two non-cyclic dev clips and one loop, linked, with their manifest rows."""
    root = tmp_path_factory.mktemp("corpus")
    for name in CLIPS:
        (root / name).symlink_to(dev_clips / name, target_is_directory=True)
    with open(dev_clips / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["clip"] in CLIPS]
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(scope="module")
def tiny_dae():
    torch.manual_seed(0)
    return dae.DAE(widths=(4, 8, 8), res_blocks=1).eval()


@pytest.fixture(scope="module")
def evaluation(corpus, tiny_dae):
    return evaluate_corpus(corpus, every=3, metrics=METRICS, seed=0, size=64,
                           dae_model=tiny_dae, show_progress=False)


def test_read_corpus_leaves_out_loops(corpus):
    clips = read_corpus(corpus)
    assert [c.name for c in clips] == ["cart_synfig_eye_open", "px_wes_archer_die"]
    assert [c.style for c in clips] == ["cartoon", "pixel-art"]
    assert len(read_corpus(corpus, include_cyclic=True)) == 3


def test_end_to_end_on_two_dev_clips(evaluation):
    ev = evaluation
    expected = ["l2", "dae", "lle-best", "lle-global", "isomap-best", "isomap-global",
                "lpips-alex", "greedy-lpips", "ssim-2opt"]
    assert [r.metric for r in ev.results] == expected * 2
    frames = {r.clip: r.frames for r in ev.results}
    assert frames == {"cart_synfig_eye_open": 9, "px_wes_archer_die": 5}
    assert len(ev.sweep) == 2 * 2 * 171
    for r in ev.results:
        assert 0.0 <= r.tau <= 1.0
        assert (r.failure == "") == (r.tau == 0.0)
        assert r.true_order_shorter == (r.failure == "solver")
    by = {(r.clip, r.metric): r for r in ev.results}
    for clip in frames:
        for m in ("lle", "isomap"):
            taus = [s.tau for s in ev.sweep if s.clip == clip and s.metric == m]
            assert by[clip, f"{m}-best"].tau == min(taus)
            assert by[clip, f"{m}-global"].tau >= by[clip, f"{m}-best"].tau
    for m in ("lle", "isomap"):  # one global setting: the lowest mean tau over the clips
        chosen = {" ".join(by[c, f"{m}-global"].setting.split()[:2]) for c in frames}
        assert len(chosen) == 1
        means = {}
        for s in ev.sweep:
            if s.metric == m:
                means.setdefault(" ".join(s.setting.split()[:2]), []).append(s.tau)
        assert np.mean(means[chosen.pop()]) == min(np.mean(v) for v in means.values())
    # LPIPS reconstructs the slowly opening eye: the path found is the true order
    eye = by["cart_synfig_eye_open", "lpips-alex"]
    assert eye.tau == 0.0 and eye.cost_found == pytest.approx(eye.cost_true)
    # paths of <= 12 frames are exact: never longer than the true order, no solver failures
    for r in ev.results + ev.sweep:
        if r.metric not in ("greedy-lpips", "ssim-2opt"):
            assert r.cost_found <= r.cost_true * (1 + 1e-9) and r.failure != "solver"
    assert {(c, m) for c, m, _ in ev.timings} == {(c, m) for c in frames for m in METRICS}


def test_rerun_is_identical_and_report_files(evaluation, corpus, tiny_dae, tmp_path):
    write_report(evaluation, tmp_path / "a")
    again = evaluate_corpus(corpus, every=3, metrics=METRICS, seed=0, size=64,
                            dae_model=tiny_dae, show_progress=False)
    write_report(again, tmp_path / "b")
    for name in ("results.csv", "sweep.csv", "summary.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for name in REPORT_FILES:
        assert (tmp_path / "a" / name).stat().st_size > 0
    assert (tmp_path / "a" / "fig8_mean_tau.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (tmp_path / "a" / "summary.md").read_text()
    assert "| lpips-alex | 2 |" in summary and "pixel-art (1)" in summary
    with pytest.raises(ReseqError, match="already exists"):
        write_report(evaluation, tmp_path / "a")
    other = evaluate_corpus(corpus, every=3, metrics=["l2"], seed=1, size=64,
                            show_progress=False)
    assert [r.tau for r in other.results] != [] and other.config["seed"] == 1


def test_score_path_tells_metric_from_solver_failures():
    # 4 frames on a line, true order 0-1-2-3; shuffled so that perm[i] is the true index
    pos = np.array([0.0, 1.0, 2.0, 3.0])
    perm = np.array([2, 0, 3, 1])
    D = np.abs(pos[perm][:, None] - pos[perm][None])
    clip = Clip("line", Path("."))
    start, end = 1, 2  # shuffled positions of true frames 0 and 3
    good = np.array([start, 3, 0, end])
    assert score_path(D, perm, good) == (0.0, 3.0, 3.0)
    bad = np.array([start, 0, 3, end])  # true order 0, 2, 1, 3: cost 2 + 1 + 2 = 5
    r = _result(clip, 4, "x", "", D, perm, bad)
    assert r.tau == pytest.approx(1 / 6) and r.failure == "solver" and r.true_order_shorter
    assert r.solver_gap == pytest.approx(5 / 3 - 1)
    # a metric that prefers the wrong order: swap the distances of true frames 1 and 2
    D2 = D.copy()
    D2[1, 3] = D2[3, 1] = 5.0  # true 0-1 made long
    r2 = _result(clip, 4, "x", "", D2, perm, bad)
    assert r2.failure == "metric" and not r2.true_order_shorter


def test_bad_inputs(tmp_path, corpus):
    with pytest.raises(ReseqError, match="does not exist"):
        read_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReseqError, match="no non-cyclic"):
        read_corpus(tmp_path / "empty")
    with pytest.raises(ReseqError, match="unknown metric"):
        evaluate_corpus(corpus, metrics=["l3"], show_progress=False)
    with pytest.raises(ReseqError, match="needs a trained DAE"):
        evaluate_corpus(corpus, metrics=["dae"], show_progress=False)
