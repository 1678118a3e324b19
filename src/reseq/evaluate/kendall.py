"""The normalized Kendall tau distance of a reconstructed order (paper eqs. 12–13).

A reconstruction is scored by how many pairs of frames it puts in the wrong relative order. For an
order ``psi`` of ``m`` frames (``psi[i]`` is the true index of the frame shown at position ``i``)::

    kappa(psi) = 2 / (m (m - 1)) * #{(i, j) : i < j and psi[i] > psi[j]}

0 is the true order, 1 its reversal. The discordant pairs are counted in O(m log m) with
:func:`scipy.stats.kendalltau` (no ties in a permutation, so tau-b = 1 - 2 * kappa) and rounded to
the exact integer count, so the value is reproducible to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from ..errors import ReseqError

__all__ = ["discordant_pairs", "kendall_tau_distance"]


def _as_order(order: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(order)
    if arr.ndim != 1:
        raise ReseqError(f"an order must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.number):
        raise ReseqError("an order must hold numbers (true frame indices)")
    if np.unique(arr).size != arr.size:
        raise ReseqError("an order must not repeat a frame")
    return arr


def discordant_pairs(order: Sequence[int] | np.ndarray) -> int:
    """The number of pairs ``i < j`` with ``order[i] > order[j]`` (inversions), in O(m log m).

    >>> discordant_pairs([0, 2, 1, 3])
    1
    """
    arr = _as_order(order)
    m = arr.size
    if m < 2:
        return 0
    pairs = m * (m - 1) // 2
    tau = stats.kendalltau(np.arange(m), arr).statistic
    return round((1.0 - float(tau)) * pairs / 2.0)


def kendall_tau_distance(order: Sequence[int] | np.ndarray) -> float:
    """Normalized Kendall tau distance of ``order`` against the identity (0 = same, 1 = reversed).

    ``order`` lists the true indices (or any increasing ranks) in reconstructed order.

    >>> kendall_tau_distance([0, 1, 2, 3])
    0.0
    >>> kendall_tau_distance([3, 2, 1, 0])
    1.0
    >>> kendall_tau_distance([1, 0, 2, 3])  # 1 discordant pair of 6
    0.16666666666666666
    """
    arr = _as_order(order)
    m = arr.size
    if m < 2:
        return 0.0
    return discordant_pairs(arr) / (m * (m - 1) // 2)
