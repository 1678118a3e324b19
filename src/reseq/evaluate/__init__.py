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
  frame) and ``ssim-2opt`` (SSIM distance, greedy + 2-opt from the first frame).

:func:`evaluate_corpus` (:mod:`reseq.evaluate.protocol`) runs the experiment on a folder of clips
and :func:`write_report` (:mod:`reseq.evaluate.report`) writes ``results.csv``, ``summary.md`` and
the figures of the paper (sorted tau curves, box plot, mean tau bars).
"""

from __future__ import annotations

from .kendall import discordant_pairs, kendall_tau_distance

__all__ = ["discordant_pairs", "kendall_tau_distance"]
