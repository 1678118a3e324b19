"""Benchmark: reseq.order / reseq.loop against strong references.

For paths (free ends, fixed first -> last frame, fixed ends in the middle of the sequence) and
cycles, at N = 100, 1000, 5000, on real LPIPS (alex; 64 x 64 clip frames, 96 x 54 bunny) matrices and on random points, it
prints our cost and time, the best cost of a strong reference, and the gap.

Instances
  bunny    Big Buck Bunny at full frame rate (``reseq.assets`` sample, 132 frames; first N)
  clips    all dev clips (``../shared/dev-clips``) and the bunny, concatenated; to reach larger N
           the frames are also used flipped / rotated (8 variants), each a distinct image
  random   N uniform random points in the unit square, Euclidean distances

References (the best of those that ran is "ref"; the gap is ours / ref - 1, so it is negative
when we beat every reference)
  milp     exact: HiGHS MILP (``highspy``) on the dummy-node cycle instance with lazy subtour
           cuts, for N <= 200, with a time limit; "milp*" = proven optimal
  ours-long  our solver with 10x the default time, two other seeds
  fast-tsp   fast-tsp alone (quantised to uint16 as in reseq) with a generous budget
  elkai      LKH-3 via elkai, only if installed (academic / non-commercial licence: reference
             only, reseq never depends on it)

    .venv/bin/python benchmarks/sequencing.py            # the full table (long: run on a quiet machine)
    .venv/bin/python benchmarks/sequencing.py --quick    # N = 100 only, short references

"LB gap" (N <= 1000) is our cost over the Held-Karp lower bound (the best minimum 1-tree
found by 1000 steps of subgradient ascent, the solver's own kernel) minus 1: a proven bound on
how far our tour can be from the optimum, whatever the references found.

``--seeds K`` solves every row with our seeds 0..K-1 and adds the mean and the largest gap over
them (one seed's gap is a draw: at N = 1000 it varies by about +-0.05% from seed to seed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from reseq.graph import loop, order, path_cost  # noqa: E402
from reseq.graph.tsp import _quantize, warm_up  # noqa: E402  (_quantize: the solver's uint16 scaling)

TASKS = ("free", "fixed", "fixedmid", "cycle")


# --------------------------------------------------------------------------------------------
# instances
# --------------------------------------------------------------------------------------------

def _cache_path(name: str, n: int) -> Path:
    from reseq._util import cache_dir

    return cache_dir("bench-sequencing") / f"{name}-{n}.npy"


def _lpips(images: np.ndarray) -> np.ndarray:
    from reseq import distance_matrix

    return distance_matrix(images, metric="lpips", net="alex", progress=True)


def _bunny_frames() -> np.ndarray:
    from reseq.assets import sample_source
    from reseq.frames import load_frames

    return load_frames(sample_source("bunny"), size=96, progress=False).array


def _clip_frames() -> np.ndarray:
    from reseq.frames import load_frames

    root = ROOT.parent / "shared" / "dev-clips"
    arrays = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        arrays.append(_square(load_frames(d, size=64, progress=False).array))
    arrays.append(_square(_bunny_frames()))
    return np.concatenate(arrays)


def _square(a: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(x).resize((64, 64))) for x in a])


def instance(name: str, n: int) -> np.ndarray:
    if name == "random":
        x = np.random.default_rng(n).random((n, 2))
        return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    path = _cache_path(name, n)
    if path.exists():
        return np.load(path)
    if name == "bunny":
        fr = _bunny_frames()
        if n > len(fr):
            raise SystemExit(f"the bunny sample has {len(fr)} frames, not {n}")
        fr = fr[:n]
    elif name == "clips":
        base = _clip_frames()
        variants = [base, base[:, :, ::-1], base[:, ::-1], base[:, ::-1, ::-1]]
        variants += [np.rot90(v, axes=(1, 2)) for v in variants]
        fr = np.concatenate(variants)[:n]
        if len(fr) < n:
            raise SystemExit(f"only {len(fr)} clip frames available, not {n}")
    else:
        raise SystemExit(f"unknown instance {name}")
    D = _lpips(np.ascontiguousarray(fr))
    np.save(path, D)
    return D


def task_args(task: str, n: int) -> dict | None:
    return {"free": {}, "fixed": {"start": 0, "end": n - 1},
            "fixedmid": {"start": n // 3, "end": 2 * n // 3}, "cycle": None}[task]


# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------

def milp_cycle(E: np.ndarray, time_limit: float) -> tuple[float, bool]:
    """Shortest Hamiltonian cycle of E by HiGHS with lazy subtour cuts: (cost, proven)."""
    import highspy
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(E)
    iu, ju = np.triu_indices(n, 1)
    m = len(iu)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", 1e-9)
    h.setOptionValue("mip_abs_gap", 1e-12)
    empty_i = np.array([], dtype=np.int32)
    h.addCols(m, E[iu, ju].astype(float), np.zeros(m), np.ones(m), 0, empty_i, empty_i,
              np.array([], dtype=float))
    h.changeColsIntegrality(m, np.arange(m, dtype=np.int32),
                            np.full(m, highspy.HighsVarType.kInteger))
    for v in range(n):
        idx = np.nonzero((iu == v) | (ju == v))[0].astype(np.int32)
        h.addRow(2.0, 2.0, len(idx), idx, np.ones(len(idx)))
    t0 = time.perf_counter()
    while True:
        left = time_limit - (time.perf_counter() - t0)
        if left <= 0:
            return np.inf, False
        h.setOptionValue("time_limit", left)
        h.run()
        x = np.asarray(h.getSolution().col_value)
        if len(x) != m:
            return np.inf, False
        sel = x > 0.5
        A = coo_matrix((np.ones(sel.sum()), (iu[sel], ju[sel])), shape=(n, n))
        k, lab = connected_components(A, directed=False)
        if k == 1:
            proven = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
            return float(E[iu[sel], ju[sel]].sum()), proven
        for c in range(k):
            S = lab == c
            cut = np.nonzero(S[iu] != S[ju])[0].astype(np.int32)
            h.addRow(2.0, highspy.kHighsInf, len(cut), cut, np.ones(len(cut)))


def _extended(D: np.ndarray, start: int | None, end: int | None) -> np.ndarray:
    """The (N+1) x (N+1) cycle instance whose dummy node N encodes the path's ends."""
    n = len(D)
    E = np.zeros((n + 1, n + 1))
    E[:n, :n] = D
    if start is not None or end is not None:
        M = 4.0 * float(D.max()) + 1.0
        E[n, :n] = M
        for v in (start, end):
            if v is not None:
                E[n, v] = 0.0
        E[:n, n] = E[n, :n]
    return E


def cycle_instance(D: np.ndarray, kw: dict | None) -> np.ndarray:
    return D if kw is None else _extended(D, kw.get("start"), kw.get("end"))


def tour_cost_as_path(D: np.ndarray, E: np.ndarray, tour, kw) -> float:
    """True cost of a tour of the cycle instance, as a path (inf if it breaks fixed ends)."""
    n = len(D)
    if kw is None:
        return path_cost(D, tour, closed=True)
    t = np.asarray(tour)
    k = int(np.nonzero(t == n)[0][0])
    p = np.concatenate((t[k + 1:], t[:k]))
    s, e = kw.get("start"), kw.get("end")
    if s is not None and p[0] != s:
        p = p[::-1]
    if (s is not None and p[0] != s) or (e is not None and p[-1] != e):
        return np.inf
    return path_cost(D, p)


def fast_tsp_ref(D, kw, seconds) -> float | None:
    try:
        import fast_tsp
    except ImportError:
        return None

    E = cycle_instance(D, kw)
    t = fast_tsp.find_tour(_quantize(E, len(D)), seconds, 1, "auto", False)
    return tour_cost_as_path(D, E, t, kw)


def elkai_ref(D, kw) -> float | None:
    try:
        import elkai
    except ImportError:
        return None
    E = cycle_instance(D, kw)
    scale = 1e6 / max(float(E.max()), 1e-300)
    Q = np.rint(E * scale).astype(int).tolist()
    t = elkai.DistanceMatrix(Q).solve_tsp()[:-1]
    return tour_cost_as_path(D, E, t, kw)


def hk_bound(E: np.ndarray, upper: float, iters: int = 1000) -> float:
    """Held-Karp lower bound on the shortest Hamiltonian cycle of ``E`` (``upper``: a known
    tour cost, for the ascent's step size)."""
    from reseq.graph import _kernels

    return float(_kernels.ascent(np.ascontiguousarray(E, dtype=np.float64), upper, iters)[1])


def solve(D, kw, **opts):
    return loop(D, **opts) if kw is None else order(D, **kw, **opts)


def solve_long(D, kw, seed: int, factor: int = 10) -> float:
    """Our solver with ``factor`` times the kicks (``effort=factor``) and another seed."""
    return solve(D, kw, seed=seed, effort=factor).cost


# --------------------------------------------------------------------------------------------

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 100 only, short references")
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--instances", default="bunny,clips,random")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--milp-limit", type=float, default=600.0, help="seconds per MILP")
    ap.add_argument("--long-factor", type=int, default=10,
                    help="the ours-long reference runs this many times our kicks")
    ap.add_argument("--long-seeds", default="1,2", help="seeds of the ours-long reference")
    ap.add_argument("--seeds", type=int, default=1,
                    help="solve each row with our seeds 0..K-1; report the mean and max gap")
    ap.add_argument("--fast-seconds", type=float, default=None,
                    help="fast-tsp reference budget (default max(2, N/100) s)")
    args = ap.parse_args(argv)
    sizes = [100] if args.quick else [int(s) for s in args.sizes.split(",")]
    milp_limit = 60.0 if args.quick else args.milp_limit
    tasks = args.tasks.split(",")
    multi = args.seeds > 1
    extra = f" {'mean gap %':>10} {'max gap %':>9}" if multi else ""
    warm_up()  # load the compiled kernels first: the times are of solving, not of loading
    print(f"{'instance':8} {'N':>5} {'task':9} {'ours':>12} {'wall s':>7} {'cpu s':>6} "
          f"{'ref':>12} {'ref by':10} {'gap %':>8} {'LB gap %':>8}{extra}")
    for name in args.instances.split(","):
        for n in sizes:
            if name == "bunny" and n > 132:
                continue
            D = instance(name, n)
            for task in tasks:
                kw = task_args(task, n)
                costs, els, cpus = [], [], []
                for seed in range(max(1, args.seeds)):
                    t0, c0 = time.perf_counter(), time.process_time()
                    costs.append(solve(D, kw, seed=seed).cost)
                    els.append(time.perf_counter() - t0)
                    cpus.append(time.process_time() - c0)
                ours, el, cpu = costs[0], float(np.mean(els)), float(np.mean(cpus))
                refs: dict[str, float] = {}
                if n <= 200:
                    try:
                        c, proven = milp_cycle(cycle_instance(D, kw), milp_limit)
                        if np.isfinite(c):
                            refs["milp*" if proven else "milp"] = c
                    except ImportError:
                        pass
                if "milp*" not in refs:
                    long = 2.0 if args.quick else max(2.0, n / 100.0)
                    if args.fast_seconds is not None:
                        long = args.fast_seconds
                    f = args.long_factor
                    for seed in (int(x) for x in args.long_seeds.split(",") if x):
                        refs[f"ours-{f}x{seed}"] = solve_long(D, kw, seed, f)
                    f = fast_tsp_ref(D, kw, long)
                    if f is not None:
                        refs["fast-tsp"] = f
                    e = None if args.quick else elkai_ref(D, kw)
                    if e is not None:
                        refs["elkai"] = e
                by = min(refs, key=refs.get)
                ref = refs[by]
                gaps = [100.0 * (c / ref - 1.0) if ref > 0 else 0.0 for c in costs]
                extra = f" {np.mean(gaps):10.3f} {max(gaps):9.3f}" if multi else ""
                lb = f"{'-':>8}"
                if n <= 1000:
                    bound = hk_bound(cycle_instance(D, kw), ref)
                    lb = f"{100.0 * (ours / bound - 1.0):8.3f}" if bound > 0 else lb
                print(f"{name:8} {n:5d} {task:9} {ours:12.6g} {el:7.2f} {cpu:6.2f} {ref:12.6g} "
                      f"{by:10} {gaps[0]:8.3f} {lb}{extra}", flush=True)


if __name__ == "__main__":
    main()
