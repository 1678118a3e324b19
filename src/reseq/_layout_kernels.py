"""Compiled kernel of :mod:`reseq.layouts` (numba, cached on disk): grid refinement by swaps."""

from __future__ import annotations

import numpy as np
from numba import njit

_DR = np.array([0, 0, 1, -1])
_DC = np.array([1, -1, 0, 0])


@njit(cache=True, nogil=True)
def _local(A, at, v, r, c, dr, dc):
    rows, cols = at.shape
    s = 0.0
    for d in range(4):
        rr, cc = r + dr[d], c + dc[d]
        if 0 <= rr < rows and 0 <= cc < cols:
            u = at[rr, cc]
            if u >= 0:
                s += A[v, u]
    return s


@njit(cache=True, nogil=True)
def refine_grid(A, at, cells, nb, rounds, dr, dc):
    """Move frame v into (or swap it with the frame of) a cell next to one of its nearest
    frames ``nb[v]`` whenever that lowers the sum of D over 4-neighbour cells; up to ``rounds``
    sweeps over all frames. ``at`` (rows x cols, -1 = empty) and ``cells`` change in place.
    Returns the number of moves made."""
    rows, cols = at.shape
    n = cells.shape[0]
    moves = 0
    for _ in range(rounds):
        improved = 0
        for v in range(n):
            for t in range(nb.shape[1]):
                w = nb[v, t]
                for d in range(4):
                    r, c = cells[w, 0] + dr[d], cells[w, 1] + dc[d]
                    if r < 0 or r >= rows or c < 0 or c >= cols:
                        continue
                    u = at[r, c]
                    if u == v:
                        continue
                    vr, vc = cells[v, 0], cells[v, 1]
                    before = _local(A, at, v, vr, vc, dr, dc)
                    if u >= 0:
                        before += _local(A, at, u, r, c, dr, dc)
                    at[vr, vc] = u
                    at[r, c] = v
                    after = _local(A, at, v, r, c, dr, dc)
                    if u >= 0:
                        after += _local(A, at, u, vr, vc, dr, dc)
                    if after < before - 1e-12 * (abs(before) + 1e-300):
                        cells[v, 0], cells[v, 1] = r, c
                        if u >= 0:
                            cells[u, 0], cells[u, 1] = vr, vc
                        improved += 1
                    else:
                        at[vr, vc] = v
                        at[r, c] = u
        moves += improved
        if improved == 0:
            break
    return moves
