"""Benchmark (issue 16): other pairwise frame distances in place of LPIPS AlexNet, and the best
any of them could do with hindsight.

For every non-cyclic clip of each corpus and every K, the protocol of ``reseq evaluate``
(every K-th frame, shuffled with the clip's seed, 256 px, the shortest path between the true
first and last frame, :func:`reseq.graph.order`), with the step matrix replaced by:

  alex          LPIPS AlexNet (the paper's; the baseline)
  pow P         alex ** P (P = 0.5, 0.75, 1.25, 1.5, 2): the same neighbours, other step weights
  L0 .. L4      one AlexNet tap alone with its LPIPS weights (L) or with equal channel weights (U)
  U0 .. U4      (LPIPS is L0 + ... + L4, exactly)
  crop          LPIPS AlexNet of the frames cropped to the box where the clip changes (pixels
                whose gray standard deviation over the clip exceeds 10% of its largest, plus
                8 px), scaled back to 256 px: the moving part magnified
  alex+crop     alex / median + crop / median
  pixel         squared pixel difference
  vgg           LPIPS VGG16 (with --vgg; several times AlexNet's time), and alex+vgg
  step-ml       a per-clip step model: a gamma density (shape k, scale t, maximum likelihood)
                fitted to the LPIPS steps of the alex path, and the path that maximises the
                likelihood of its steps, i.e. the edge cost D/t - (k-1) log D. For k = 1 this is
                alex itself; for k > 1 it also charges steps much shorter than the clip's usual
                one (a path standing still between look-alike pictures)

It prints, per corpus and K, the mean Kendall tau distance of each (and its worst change
against alex), then the "oracle": per clip the best tau of all of them, chosen with hindsight.
A pairwise distance that the oracle cannot bring down far enough cannot reach the target by
reweighting these parts. Each variant is a plain matrix, so the same exact solver runs on all.

    python benchmarks/motion_variants.py ../shared/dev-clips /tmp/devset2 /tmp/devset3 /tmp/devset4
    # all four sets (scripts/build_devset*.py), no VGG: about 6 min on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from reseq.evaluate import protocol as P
from reseq.evaluate.kendall import kendall_tau_distance


def _sq(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    g = x @ x.T
    d = np.diag(g)
    return np.maximum(d[:, None] + d[None] - 2 * g, 0.0)


def _layers(x: np.ndarray) -> dict[str, np.ndarray]:
    from reseq.features import layer_scales, layer_shapes, normalized_features

    h, w = x.shape[1:3]
    scales = layer_scales("alex", h, w, "lpips").astype(np.float64)
    f = np.concatenate([normalized_features(x[i:i + 16]) for i in range(0, len(x), 16)])
    out, col = {}, 0
    for i, (c, hh, ww) in enumerate(layer_shapes("alex", h, w)):
        size = c * hh * ww
        part = f[:, col:col + size].astype(np.float64)
        out[f"L{i}"] = _sq(part * scales[col:col + size])
        out[f"U{i}"] = _sq(part / np.sqrt(hh * ww))
        col += size
    return out


def _crop(x: np.ndarray) -> np.ndarray:
    from PIL import Image

    from reseq.distances import distance_matrix

    sd = x.astype(np.float32).mean(-1).std(0)
    ys, xs = np.nonzero(sd > 0.1 * sd.max())
    if not len(ys):
        return distance_matrix(x, progress=False)
    y0, y1 = max(0, ys.min() - 8), min(x.shape[1], ys.max() + 9)
    x0, x1 = max(0, xs.min() - 8), min(x.shape[2], xs.max() + 9)
    c = x[:, y0:y1, x0:x1]
    h, w = c.shape[1:3]
    s = 256 / max(h, w)
    size = (max(32, round(w * s)), max(32, round(h * s)))
    c = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(f)).resize(
        size, Image.Resampling.BICUBIC)) for f in c])
    return np.asarray(distance_matrix(c, progress=False), dtype=np.float64)


def _med(M: np.ndarray) -> float:
    off = M[~np.eye(len(M), dtype=bool)]
    return float(np.median(off)) or 1.0


def _gamma_shape(x: np.ndarray) -> float:
    """Shape of the gamma density (location 0) fitted by maximum likelihood to ``x``.

    Minka's closed-form approximation of the maximum-likelihood equation, within 1.5 % of its
    root; capped at 100 (near-constant steps).
    """
    s = np.log(x.mean()) - np.log(x).mean()
    return 100.0 if s <= 1e-9 else float((3 - s + np.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s))


def step_ml(A: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Edge costs D/t - (k-1) log D of the gamma density fitted to ``path``'s steps in ``A``."""
    steps = A[path[:-1], path[1:]]
    steps = steps[steps > 0]
    k = min(_gamma_shape(steps), 100.0)
    mean = float(steps.mean())
    F = A / (mean / k) - (k - 1) * np.log(np.maximum(A, 1e-3 * mean))
    # every path between the two ends has n - 1 edges: a constant shift changes no choice
    return F - F[~np.eye(len(A), dtype=bool)].min() + 1e-9 * mean


def variants(x: np.ndarray, vgg: bool = False) -> dict[str, np.ndarray]:
    """Every step matrix above but ``step-ml``, which needs the alex path (see :func:`main`)."""
    A = np.asarray(P._deep(x, "lpips-alex", {}), dtype=np.float64)
    out = {"alex": A}
    for p in (0.5, 0.75, 1.25, 1.5, 2.0):
        out[f"pow {p:g}"] = A ** p
    out.update(_layers(x))
    C = _crop(x)
    out["crop"] = C
    out["alex+crop"] = A / _med(A) + C / _med(C)
    out["pixel"] = _sq(x.reshape(len(x), -1) / 255.0)
    if vgg:
        V = np.asarray(P._deep(x, "lpips-vgg", {}), dtype=np.float64)
        out["vgg"] = V
        out["alex+vgg"] = A / _med(A) + V / _med(V)
    return out


def _solve(M: np.ndarray, ends: tuple[int, int]) -> np.ndarray:
    M = M.copy()
    np.fill_diagonal(M, 0.0)
    return P._hamiltonian(M, ends[0], ends[1], 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--every", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--vgg", action="store_true", help="also LPIPS VGG16 and alex+vgg")
    args = ap.parse_args()
    taus: dict[tuple[str, int], dict[str, list[float]]] = {}
    for corpus in args.corpora:
        for clip in P.read_corpus(corpus):
            for k in args.every:
                arr = P._load_clip(clip, k, 256)
                n = len(arr)
                if n < 4:
                    continue
                perm = P._shuffle(clip.name, n, 0)
                inv = np.argsort(perm)
                x = np.ascontiguousarray(arr[perm])
                row = taus.setdefault((corpus, k), {})
                ends = int(inv[0]), int(inv[-1])
                mats = variants(x, args.vgg)
                A = mats.pop("alex")
                paths = {"alex": _solve(A, ends)}
                paths["step-ml"] = _solve(step_ml(A, paths["alex"]), ends)
                paths.update((name, _solve(M, ends)) for name, M in mats.items())
                for name, path in paths.items():
                    row.setdefault(name, []).append(kendall_tau_distance(perm[path]))
                print(f"  {Path(corpus).name} K={k} {clip.name}: alex {row['alex'][-1]:.4f}",
                      file=sys.stderr, flush=True)
    names = list(next(iter(taus.values())))
    print("| corpus | K | clips | " + " | ".join(names) + " | oracle |")
    print("|---|---|---|" + "---|" * (len(names) + 1))
    for (corpus, k), row in taus.items():
        base = np.array(row["alex"])
        cells = []
        for name in names:
            t = np.array(row[name])
            cells.append(f"{t.mean():.4f} ({(t - base).max():+.2f})")
        oracle = np.min(np.array([row[m] for m in names]), axis=0).mean()
        print(f"| {Path(corpus).name} | {k} | {len(base)} | " + " | ".join(cells)
              + f" | {oracle:.4f} |", flush=True)


if __name__ == "__main__":
    main()
