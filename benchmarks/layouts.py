"""Benchmark: smooth sub-sequences and layouts on N = 200, 1,000, 5,000 real frames.

Frames: every real frame of the benchmark pool (:mod:`frame_pool`: the Big Buck Bunny sample and
every dev clip, letterboxed to 64 x 36) in eight variants (as is, mirrored left-right, up-down,
both, and the same four with red and blue swapped: distinct images), a seeded random 5,000 of
them; N = 200 and 1,000 are the first N of those. LPIPS (alex) is computed once and cached in
``/tmp/reseq-bench-layouts/``.

Sub-sequences (``reseq.subsequences``, count 10, overlap 0.5): time, and the cost of the best
sequence against the two baselines, the best greedy nearest-neighbour chain over all start
frames and the best window of L consecutive frames along ``reseq.order(D)`` (its solve is not
timed), and against a reference: the same search ten times wider (30 neighbours, 30 paths kept
per end frame). "vs base" is ours / min(baselines) (<= 1 means never worse), "vs ref" ours /
reference.

Layouts (``reseq.layout``): time and neighbourhood score (mean LPIPS between the frames the
layout shows as neighbours; lower is better) against the expected score of a random
arrangement and the score of a 2-D t-SNE of D (scikit-learn, sqrt(D) precomputed) snapped by
linear assignment to the same places; "rings" is the alternative radial design, the Hamiltonian
path wound on concentric rings (an Archimedean spiral, one thumbnail apart), scored like radial.

    .venv/bin/python benchmarks/layouts.py                  # N = 200, 1000, 5000 (minutes)
    .venv/bin/python benchmarks/layouts.py --n 200 1000     # quicker
    .venv/bin/python benchmarks/layouts.py --no-tsne        # skip t-SNE (slow at 5000)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from reseq import layouts as L  # noqa: E402
from reseq.graph import order  # noqa: E402
from reseq.graph.tsp import warm_up  # noqa: E402
from reseq.sequences import _greedy_chains, _keys, subsequences  # noqa: E402

CACHE = Path("/tmp/reseq-bench-layouts")
NMAX = 5000


def matrix() -> np.ndarray:
    path = CACHE / f"lpips-alex-{NMAX}.npy"
    if path.exists():
        return np.load(path)
    from frame_pool import real_frames
    from reseq.distances import distance_matrix

    base, _ = real_frames(64)
    variants = [base, base[:, :, ::-1], base[:, ::-1], base[:, ::-1, ::-1]]
    pool = np.concatenate(variants + [v[..., ::-1] for v in variants])
    pick = np.random.default_rng(0).permutation(len(pool))[:NMAX]
    print(f"measuring LPIPS of {NMAX} of {len(pool)} frames ...", file=sys.stderr, flush=True)
    D = distance_matrix(np.ascontiguousarray(pool[pick]), progress=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, D)
    return D


def best(A, P, objective) -> float:
    k1, _ = _keys(A, P, objective)
    return float(k1.min())


def timed(f, *a, **k):
    t = time.perf_counter()
    out = f(*a, **k)
    return out, time.perf_counter() - t


def rings_score(A, seq) -> float:
    """Hamiltonian path on an Archimedean spiral, one unit between frames and between turns."""
    n = len(seq)
    s = np.arange(n, dtype=float)
    theta = np.sqrt(4 * np.pi * s)  # arc length of r = theta / (2 pi) is about theta^2 / 4 pi
    r = theta / (2 * np.pi)
    pos = np.empty((n, 2))
    pos[seq] = np.c_[r * np.cos(theta), r * np.sin(theta)]
    lay = L.Layout("rings", L._unit(pos), neighbours=L._plane_neighbours(L._unit(pos)))
    return L.neighbourhood_score(A, lay)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[200, 1000, 5000])
    ap.add_argument("--no-tsne", action="store_true")
    args = ap.parse_args()
    D = matrix()
    warm_up()
    L.layout(D[:20, :20], "grid")  # load the compiled grid kernel
    sub_rows, lay_rows = [], []
    for n in args.n:
        A = np.ascontiguousarray(D[:n, :n])
        path, t_order = timed(lambda A=A: order(A).order)
        print(f"N = {n}: reseq.order {t_order:.1f} s (baseline only)", file=sys.stderr,
              flush=True)
        for length in (8, 16, 32):
            for objective in ("sum", "max"):
                res, t = timed(subsequences, A, length, 10, objective)
                ref = subsequences(A, length, 1, objective, neighbours=30, per_end=30)[0].cost
                greedy = best(A, _greedy_chains(A, length), objective)
                win = best(A, np.lib.stride_tricks.sliding_window_view(path, length), objective)
                ours = res[0].cost
                sub_rows.append((n, length, objective, t, ours, greedy, win,
                                 ours / max(min(greedy, win), 1e-300), ours / max(ref, 1e-300),
                                 len(res)))
        rnd = L.random_score(A)
        tsne = None
        if not args.no_tsne:
            tsne, t_tsne = timed(L.tsne_positions, A)
            print(f"N = {n}: t-SNE {t_tsne:.1f} s (reference only)", file=sys.stderr, flush=True)
        for style in (*L.STYLES, "grid+tsne"):
            if style == "grid+tsne":
                if tsne is None:
                    continue
                t0 = time.perf_counter()
                shape = L.grid_shape(n)
                cells = L._refine_grid(A, L._snap(tsne, shape), shape)
                lay = L.Layout("grid", L._cell_positions(cells, shape),
                               neighbours=L._grid_neighbours(cells, shape), grid_shape=shape,
                               cells=cells)
                lay.score = L.neighbourhood_score(A, lay)
                t = time.perf_counter() - t0 + t_tsne
            else:
                lay, t = timed(L.layout, A, style)
            ts = (L.neighbourhood_score(A, lay, L._snap_to_places(tsne, lay.positions))
                  if tsne is not None else float("nan"))
            extra = f"rings {rings_score(A, L.layout(A, 'linear', path=path).order):.4f}" \
                if style == "radial" else ""
            lay_rows.append((n, style, t, lay.score, rnd, ts, extra))
    print("\nsubsequences (count 10, overlap 0.5): best cost vs baselines and a 10x wider search")
    print(f"{'N':>5} {'L':>3} {'obj':>4} {'time s':>7} {'ours':>9} {'greedy':>9} {'window':>9} "
          f"{'vs base':>8} {'vs ref':>7} {'found':>5}")
    for r in sub_rows:
        print(f"{r[0]:>5} {r[1]:>3} {r[2]:>4} {r[3]:>7.2f} {r[4]:>9.4g} {r[5]:>9.4g} "
              f"{r[6]:>9.4g} {r[7]:>8.3f} {r[8]:>7.3f} {r[9]:>5}")
    print("\nlayouts: neighbourhood score (mean LPIPS between layout neighbours; lower is better)")
    print(f"{'N':>5} {'style':>10} {'time s':>7} {'score':>8} {'random':>8} {'t-SNE':>8} "
          f"{'vs rnd':>7} {'vs tsne':>7}  note")
    for n, style, t, s, rnd, ts, extra in lay_rows:
        print(f"{n:>5} {style:>10} {t:>7.2f} {s:>8.4f} {rnd:>8.4f} {ts:>8.4f} {s / rnd:>7.3f} "
              f"{s / ts if ts == ts else float('nan'):>7.3f}  {extra}")


if __name__ == "__main__":
    main()
