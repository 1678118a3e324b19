"""Benchmark: the measured error of each numeric check in the tests, beside its tolerance.

Recomputes what ``tests/test_distances.py`` and ``tests/test_features.py`` compare, on the same
real frames, and prints the largest error each one sees next to the limit the test allows, so a
margin can be read off on any machine (run it with ``OMP_NUM_THREADS=1`` and ``=2``):

- Gram-matrix LPIPS vs the per-pair reference (Big Buck Bunny at 256 x 144, Kenney robot at 96);
- streamed vs in-memory matrix (same chunks of columns: expected 0);
- per-pair and embedding LPIPS vs the published reference values (6 decimals);
- pixel L2 vs the direct formula.

    .venv/bin/python benchmarks/precision.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from reseq.assets import sample_source
from reseq.distances import distance_matrix
from reseq.features import lpips_embedding, lpips_pair
from reseq.frames import load_frames

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def _pairs(n: int, rng: np.random.Generator, k: int) -> list[tuple[int, int]]:
    pairs = {(0, 1), (0, n - 1), (n - 2, n - 1)}
    while len(pairs) < k:
        i, j = sorted(rng.choice(n, 2, replace=False))
        pairs.add((int(i), int(j)))
    return sorted(pairs)


def main() -> None:
    from PIL import Image

    rows = []
    bunny = load_frames(sample_source("bunny"), size=256, every=11, progress=False)
    kenney = load_frames(sample_source("kenney") / "robot", size=96, progress=False)
    for name, frames, net in [("bunny", bunny, "alex"), ("bunny", bunny, "vgg"),
                              ("kenney robot", kenney, "alex")]:
        D = distance_matrix(frames, net=net, progress=False, cache=False)
        rng = np.random.default_rng(0)
        err = max(abs(D[i, j] - lpips_pair(frames.array[i], frames.array[j], net))
                  for i, j in _pairs(len(frames), rng, 6 if net == "vgg" else 10))
        rows.append((f"Gram vs per-pair LPIPS, {name} {net}", err, 1e-5))
    small = bunny[:8]
    full = distance_matrix(small, progress=False, cache=False)
    streamed = distance_matrix(small, progress=False, cache=False, memory_budget=8 * 2**20)
    rows.append(("streamed vs in-memory, bunny alex", float(np.abs(full - streamed).max()), 1e-7))
    folder = SHARED / "lpips-reference"
    ims = {k: np.asarray(Image.open(folder / f"ex_{k}.png").convert("RGB"))
           for k in ("ref", "p0", "p1")}
    expected = json.loads((folder / "expected.json").read_text())["distances"]
    idx = {"ref": 0, "p0": 1, "p1": 2}
    for net in ("alex", "vgg"):
        emb = lpips_embedding(np.stack([ims["ref"], ims["p0"], ims["p1"]]), net).astype(np.float64)
        pair_err = emb_err = 0.0
        for pair, value in expected[net].items():
            a, b = pair.split("-")
            pair_err = max(pair_err, abs(lpips_pair(ims[a], ims[b], net) - value))
            emb_err = max(emb_err, abs(float(((emb[idx[a]] - emb[idx[b]]) ** 2).sum()) - value))
        rows.append((f"per-pair LPIPS vs reference values, {net}", pair_err, 1e-4))
        rows.append((f"embedding LPIPS vs reference values, {net}", emb_err, 1e-4))
    D = distance_matrix(kenney, metric="l2", progress=False, cache=False)
    x = kenney.array.reshape(len(kenney), -1).astype(np.float64) / 255
    direct = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    rows.append(("pixel L2 vs direct formula, kenney robot", float(np.abs(D - direct).max()), 1e-4))

    print(f"numeric checks of the tests (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')})")
    print("check | largest error | test limit | margin")
    print("--- | --- | --- | ---")
    for name, err, limit in rows:
        margin = "inf" if err == 0 else f"{limit / err:.0f}x"
        print(f"{name} | {err:.2e} | {limit:.0e} | {margin}")


if __name__ == "__main__":
    main()
