"""Benchmark: the Gram-matrix LPIPS route against per-pair network runs.

For N real frames at long edge 256 (256 x 144) and each network it prints: feature time, matrix
time, the per-pair reference time (timed on a sample of pairs and extrapolated to N(N-1)/2),
the speed-up, the largest |Gram - per-pair| on the sampled pairs, the matrix stage's GFLOP/s
beside this machine's float32 GEMM rate, and the peak RSS of the process that did the work.
Each configuration runs in a fresh process so peak RSS is its own.

    .venv/bin/python benchmarks/distance_matrix.py                 # the table of the issue
    .venv/bin/python benchmarks/distance_matrix.py --quick         # N = 50 only
    .venv/bin/python benchmarks/distance_matrix.py --config 2000:alex --config 1000:vgg
    .venv/bin/python benchmarks/distance_matrix.py --gram --n 1000 --size 256   # per device

``--gram``: the Gram stage alone (:func:`reseq.distances.squared_euclidean` on the in-memory
LPIPS embedding of N real frames, AlexNet), on every device torch sees here (cpu, then cuda and
mps when present): best-of-3 time, GFLOP/s, and the largest difference from the CPU's matrix
and from a float64 reference (same chunks multiplied in float64), absolute and relative to the
median distance.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT = ["50:alex", "50:vgg", "200:alex", "200:vgg", "1000:alex", "1000:vgg", "2000:alex"]


def gemm_rate(n: int = 2048, repeats: int = 3) -> float:
    """Measured float32 GEMM rate (GFLOP/s) of torch.mm on this machine, best of ``repeats``."""
    import torch

    a = torch.randn(n, n)
    torch.mm(a, a)
    best = min(_timed(lambda: torch.mm(a, a)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_one(n: int, net: str, pairs: int, budget_gb: float) -> dict:
    sys.path.insert(0, str(HERE))
    from frame_pool import frame_pool
    from reseq.distances import distance_matrix
    from reseq.features import load_network, lpips_pair

    frames = frame_pool(n)
    load_network(net)
    stats: dict = {}
    t0 = time.perf_counter()
    D = distance_matrix(frames, net=net, cache=False, progress=False, stats=stats,
                        memory_budget=int(budget_gb * 1024**3))
    total = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    sample = [tuple(sorted(rng.choice(n, 2, replace=False))) for _ in range(pairs)]
    lpips_pair(frames[0], frames[1], net)  # warm-up
    t0 = time.perf_counter()
    errs = [abs(lpips_pair(frames[i], frames[j], net) - D[i, j]) for i, j in sample]
    per_pair = (time.perf_counter() - t0) / pairs
    return {
        "n": n, "net": net, "features_s": stats["features_s"], "matrix_s": stats["matrix_s"],
        "total_s": total, "per_pair_s": per_pair, "reference_s": per_pair * n * (n - 1) / 2,
        "max_err": float(max(errs)), "gflops": stats["gemm_flops"] / stats["matrix_s"] / 1e9,
        "streamed": stats["streamed"], "dim": stats["dim"],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def gram_table(n: int, size: int, repeats: int = 3) -> None:
    import torch

    sys.path.insert(0, str(HERE))
    from frame_pool import frame_pool
    from reseq.distances import squared_euclidean
    from reseq.features import lpips_embedding

    frames = frame_pool(n, size)
    emb = np.concatenate([lpips_embedding(frames[s:s + 16], "alex", device="auto")
                          for s in range(0, n, 16)])
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
        ["mps"] if getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available() else [])
    ref = squared_euclidean(emb.astype(np.float64))
    med = float(np.median(ref[np.triu_indices(n, 1)]))
    flops = 2 * n * n * emb.shape[1]
    print(f"Gram stage: N = {n} real frames at {size} px, LPIPS/alex embedding {emb.shape[1]} "
          f"float32 columns ({flops / 1e9:.0f} GFLOP), best of {repeats}; median distance "
          f"{med:.4g}; torch {torch.__version__}"
          + (f", {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    print("| device | Gram s | GFLOP/s | max abs diff vs cpu | max abs diff vs float64 "
          "| / median distance |")
    print("|---|---|---|---|---|---|")
    cpu = None
    for dev in devices:
        squared_euclidean(emb[:8], device=dev)  # warm-up (CUDA context, kernels)
        best, D = float("inf"), None
        for _ in range(repeats):
            if dev == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            D = squared_euclidean(emb, device=dev)
            best = min(best, time.perf_counter() - t0)
        cpu = D if cpu is None else cpu
        err = float(np.abs(D - ref).max())
        print(f"| {dev} | {best:.3f} | {flops / best / 1e9:.1f} | {np.abs(D - cpu).max():.2e} "
              f"| {err:.2e} | {err / med:.2e} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", action="append", help="N:net, repeatable")
    ap.add_argument("--quick", action="store_true", help="N = 50 with alex and vgg only")
    ap.add_argument("--pairs", type=int, default=8, help="pairs timed for the per-pair reference")
    ap.add_argument("--memory", type=float, default=4.0, help="memory budget in GB")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--gram", action="store_true", help="the Gram stage per device (see above)")
    ap.add_argument("--n", type=int, default=1000, help="--gram: frames")
    ap.add_argument("--size", type=int, default=256, help="--gram: long edge in pixels")
    args = ap.parse_args()
    if args.gram:
        gram_table(args.n, args.size)
        return
    if args.one:
        n, net = args.one.split(":")
        print(json.dumps(run_one(int(n), net, args.pairs, args.memory)))
        return
    configs = args.config or (["50:alex", "50:vgg"] if args.quick else DEFAULT)
    rate = gemm_rate()
    rows = []
    print(f"float32 GEMM rate (torch.mm 2048^3, best of 3): {rate:.1f} GFLOP/s; memory budget {args.memory} GB")
    head = ("| N | net | features s | matrix s | total s | per-pair ref s (extrap.) | speed-up | "
            "max abs err | matrix GFLOP/s | % of GEMM | streamed | peak RSS GB |")
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for cfg in configs:
        out = subprocess.run([sys.executable, __file__, "--one", cfg, "--pairs", str(args.pairs),
                              "--memory", str(args.memory)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"| {cfg} failed: {out.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"| {r['n']} | {r['net']} | {r['features_s']:.1f} | {r['matrix_s']:.2f} | {r['total_s']:.1f} | "
              f"{r['reference_s']:.0f} | {r['reference_s'] / r['total_s']:.0f}x | {r['max_err']:.1e} | "
              f"{r['gflops']:.1f} | {100 * r['gflops'] / rate:.0f}% | {'yes' if r['streamed'] else 'no'} | "
              f"{r['peak_rss_gb']:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"gemm_gflops": rate, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
