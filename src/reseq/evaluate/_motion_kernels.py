"""numba kernel of :func:`reseq.evaluate.motion.improve` (compiled once, cached on disk).

``search`` is a best-improvement local search (2-opt and Or-opt of 1-3 frames) under the
objective ``sum D[step] + sum turn(triple)``; see :mod:`reseq.evaluate.motion`.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["search"]


@numba.njit(cache=True, nogil=True)
def _turn(D, a, b, c, kappa, weight):
    dab = D[a, b]
    dbc = D[b, c]
    inner = 0.5 * (D[a, c] - dab - dbc)
    t = -inner - kappa * np.sqrt(dab * dbc)
    return weight * t if t > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _window(D, o, lo, hi, kappa, weight, closed):
    """Steps at positions lo-1..hi and turns centred at lo-1..hi+1 (wrapped or clipped)."""
    n = o.shape[0]
    c = 0.0
    for p in range(lo - 1, hi + 1):
        if closed:
            q = p % n
            c += D[o[q], o[(q + 1) % n]]
        elif 0 <= p < n - 1:
            c += D[o[p], o[p + 1]]
    for p in range(lo - 1, hi + 2):
        if closed:
            q = p % n
            c += _turn(D, o[(q - 1) % n], o[q], o[(q + 1) % n], kappa, weight)
        elif 0 < p < n - 1:
            c += _turn(D, o[p - 1], o[p], o[p + 1], kappa, weight)
    return c


@numba.njit(cache=True, nogil=True)
def _or_move(o, out, i, j, k, rev):
    """out = o with o[i..j] moved after o[k] (reversed when rev)."""
    n = o.shape[0]
    L = j - i + 1
    w = 0
    for p in range(n):
        if i <= p <= j:
            continue
        out[w] = o[p]
        w += 1
        if p == k:
            for q in range(L):
                out[w] = o[j - q] if rev else o[i + q]
                w += 1


@numba.njit(cache=True, nogil=True)
def search(D, o, kappa, weight, thresh, closed, max_passes):
    """Improve ``o`` in place (and return it); a move must gain more than ``thresh``."""
    n = o.shape[0]
    lo_i = 0 if closed else 1
    hi_i = n - 1 if closed else n - 2
    buf = np.empty_like(o)
    best_buf = np.empty_like(o)
    for _ in range(max_passes):
        best = -thresh
        found = False
        # 2-opt: only the seams change
        for i in range(lo_i, hi_i + 1):
            for j in range(i + 1, hi_i + 1):
                if closed and i == 0 and j == n - 1:
                    continue
                old = 0.0
                new = 0.0
                for p in (i - 1, j):
                    q = p % n
                    old += D[o[q], o[(q + 1) % n]]
                a = o[(i - 1) % n]
                b = o[(j + 1) % n]
                new += D[a, o[j]] + D[o[i], b]
                # turns centred at i-1, i, j, j+1 before and after
                for p in (i - 1, i, j, j + 1):
                    if not closed and (p <= 0 or p >= n - 1):
                        continue
                    q = p % n
                    old += _turn(D, o[(q - 1) % n], o[q], o[(q + 1) % n], kappa, weight)
                for q in range(n):
                    buf[q] = o[q]
                for q in range(j - i + 1):
                    buf[i + q] = o[j - q]
                for p in (i - 1, i, j, j + 1):
                    if not closed and (p <= 0 or p >= n - 1):
                        continue
                    q = p % n
                    new += _turn(D, buf[(q - 1) % n], buf[q], buf[(q + 1) % n], kappa, weight)
                d = new - old
                if d < best:
                    best = d
                    found = True
                    for q in range(n):
                        best_buf[q] = buf[q]
        # Or-opt: segments of 1-3 frames after another frame, both ways round
        for L in range(1, 4):
            for i in range(lo_i, hi_i - L + 2):
                j = i + L - 1
                kmax = n if closed else n - 1
                for k in range(0, kmax):
                    if i - 1 <= k <= j:
                        continue
                    for r in range(2 if L > 1 else 1):
                        _or_move(o, buf, i, j, k, r == 1)
                        lo = min(i, k + 1)
                        hi = max(j, k)
                        d = (_window(D, buf, lo, hi, kappa, weight, closed)
                             - _window(D, o, lo, hi, kappa, weight, closed))
                        if d < best:
                            best = d
                            found = True
                            for q in range(n):
                                best_buf[q] = buf[q]
        if not found:
            break
        for q in range(n):
            o[q] = best_buf[q]
    return o
