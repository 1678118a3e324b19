"""The sparse path (sketches + candidate graph) on the evaluation protocol: the order it finds for a
short real clip scores as the dense order does (``benchmarks/scale.py kendall``, docs/SCALE.md)."""

from __future__ import annotations

import numpy as np

from reseq.distances import distance_matrix
from reseq.evaluate import protocol as ev
from reseq.graph.knn import knn_graph
from reseq.sketches import sketch


def test_sparse_order_scores_as_the_dense_one_on_real_clips(dev_clips):
    # Measured at --size 64, every frame, d = 1024 (11 non-cyclic dev clips that fit 64 px):
    # 10 of 11 orders identical; px_pingus_bomber's differs by one swap (tau 0.0083 against
    # 0.0167, path +0.03% on the exact matrix). Bounds with margin: |delta tau| <= 0.05 (6 of
    # 120 pairs on 16 frames) and +1% path; a broken sketch or graph gives tau ~0.3.
    clips = {c.name: c for c in ev.read_corpus(dev_clips)}
    for name in ("px_pingus_bomber", "cart_synfig_eye_open"):
        clip = clips[name]
        array = ev._load_clip(clip, 1, 64)
        (dense,), _ = ev.evaluate_frames(clip, array, ["lpips-alex"])
        perm = ev._shuffle(clip.name, len(array), 0)  # the protocol's shuffle and ends
        x = np.ascontiguousarray(array[perm])
        inv = np.argsort(perm)
        start, end = int(inv[0]), int(inv[-1])
        SD = knn_graph(sketch(x, d=1024, cache=False, progress=False, device="cpu"), k=10)
        path = ev._hamiltonian(SD, start, end, 0)  # reseq.graph.order on SparseDistances
        assert path[0] == start and path[-1] == end
        tau, cost, _ = ev.score_path(distance_matrix(x, progress=False), perm, path)
        assert abs(tau - dense.tau) <= 0.05, (name, tau, dense.tau)
        assert cost <= dense.cost_found * 1.01, (name, cost, dense.cost_found)
