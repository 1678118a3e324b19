"""Evaluation: the paper's animation reconstruction experiment (section 5.3) and its baselines.

How good is a distance between frames for sequencing animation? Take a real clip whose frames are
in true order, keep every K-th frame, shuffle them, build the complete graph with a distance as edge
weights, find the shortest Hamiltonian path from the true first to the true last frame, and score
the result with the normalized Kendall tau distance (:func:`kendall_tau_distance`, eqs. 12–13):
0 is a perfect reconstruction, 1 the reversed clip.

The distances compared (:mod:`reseq.evaluate.baselines`):

- ``l2``: raw pixels (eq. 8); ``dae``: the bottleneck of a denoising autoencoder (eq. 9,
  :mod:`reseq.evaluate.dae`); ``lle`` / ``isomap``: L2 in a scikit-learn embedding swept over
  k in 2..10, d in 2..20 (eq. 10), reported best-per-clip (the paper's optimistic choice) and with
  the single best global setting (fair);
- ``cosine-alex`` / ``cosine-vgg`` (eq. 11) and ``lpips-alex`` / ``lpips-vgg`` (eq. 1), from
  :func:`reseq.distances.distance_matrix`;
- two recipes people use today: ``greedy-lpips`` (nearest-neighbour chain on LPIPS from the first
  frame) and ``ssim-2opt`` (SSIM distance, greedy + 2-opt from the first frame);
- ``lpips-alex-motion``: the LPIPS path re-searched under LPIPS length plus a hinge on sharp
  turns (:mod:`reseq.evaluate.motion`; issue 16's experiment, not the default: it missed its
  held-out target, see ``docs/motion-objective.md``).

:func:`evaluate_corpus` (:mod:`reseq.evaluate.protocol`) runs the experiment on a folder of clips
and :func:`write_report` (:mod:`reseq.evaluate.report`) writes ``results.csv``, ``summary.md`` and
the figures of the paper (sorted tau curves, box plot, mean tau bars).

The denoising autoencoder is trained by :func:`~reseq.evaluate.dae.train_dae` (``reseq dae
train``); by default the evaluation trains one on frames it never scores — the corpus' loops, the
Kenney sprites and the Big Buck Bunny frames after the dev clip — and caches it.

Heavy parts (torch, scikit-learn) are imported on first use, so ``kendall_tau_distance`` stays
cheap to import.

>>> kendall_tau_distance([0, 2, 1, 3])  # 1 discordant pair of 6
0.16666666666666666
"""

from __future__ import annotations

import importlib
from typing import Any

from .kendall import discordant_pairs, kendall_tau_distance

_LAZY = {
    "METRICS": "protocol",
    "Clip": "protocol",
    "Evaluation": "protocol",
    "Result": "protocol",
    "evaluate_corpus": "protocol",
    "evaluate_frames": "protocol",
    "read_corpus": "protocol",
    "write_report": "report",
    "summary_markdown": "report",
    "DAE": "dae",
    "DAEConfig": "dae",
    "train_dae": "dae",
    "load_dae": "dae",
    "default_dae": "dae",
    "dae_embedding": "dae",
    "l2_matrix": "baselines",
    "ssim_matrix": "baselines",
    "manifold_matrices": "baselines",
    "greedy_chain": "baselines",
    "two_opt": "baselines",
}

__all__ = ["discordant_pairs", "kendall_tau_distance", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'reseq.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
