"""Compiled local search on a path whose distances come from sketches (no matrix).

2-opt and Or-opt (segments of 1-3 frames, both orientations) on candidate-neighbour lists, with
a first-improvement sweep repeated until no move improves (or ``rounds`` sweeps); a sweep looks
only at the frames a move has touched since they were last looked at (don't-look bits: after the
first sweep only a few percent of the frames; on 3x10^5 video-like sketches the path came out
0.009% longer, the first search took 2.0 s instead of 28.6 s: docs/SCALE.md). Distances are
squared Euclidean between float32 sketch rows, accumulated in float64. The path is an array
with a position index; a 2-opt move reverses the segment between its two edges (O(length)),
an Or move shifts the frames between the segment's old and new place. Free ends (``fix_start`` /
``fix_end`` false) also allow reversing a prefix / suffix.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def dist(S, a, b):
    s = 0.0
    for k in range(S.shape[1]):
        t = np.float64(S[a, k]) - np.float64(S[b, k])
        s += t * t
    return s


@njit(cache=True, nogil=True)
def _reverse(path, pos, i, j):
    while i < j:
        a = path[i]
        b = path[j]
        path[i] = b
        pos[b] = i
        path[j] = a
        pos[a] = j
        i += 1
        j -= 1


@njit(cache=True, nogil=True)
def _move(path, pos, i, L, j, rev, buf):
    """Move path[i:i+L] to just after the frame now at position j (j outside the segment),
    reversed when ``rev``."""
    for t in range(L):
        buf[t] = path[i + L - 1 - t] if rev else path[i + t]
    if j > i:
        for q in range(i + L, j + 1):
            path[q - L] = path[q]
            pos[path[q - L]] = q - L
        start = j - L + 1
    else:
        for q in range(i - 1, j, -1):
            path[q + L] = path[q]
            pos[path[q + L]] = q + L
        start = j + 1
    for t in range(L):
        path[start + t] = buf[t]
        pos[buf[t]] = start + t


@njit(cache=True, nogil=True)
def _wake(active, a, b, c, d):
    active[a] = True
    active[b] = True
    active[c] = True
    active[d] = True


@njit(cache=True, nogil=True)
def improve(S, nb, path, fix_start, fix_end, rounds, eps):
    """Improve ``path`` in place; returns the number of moves made."""
    n = len(path)
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[path[i]] = i
    buf = np.empty(3, np.int64)
    k = nb.shape[1]
    active = np.ones(n, np.bool_)  # don't-look bits: a frame is looked at again only after a
    moves = 0                      # move changed one of its path edges
    for _ in range(rounds):
        made = 0
        for a in range(n):
            if not active[a]:
                continue
            active[a] = False
            # ---- 2-opt, a with its successor / predecessor
            for side in range(2):
                i = pos[a]
                if side == 0 and i == n - 1:
                    continue
                if side == 1 and i == 0:
                    continue
                b = path[i + 1] if side == 0 else path[i - 1]
                dab = dist(S, a, b)
                for m in range(k):
                    c = nb[a, m]
                    dac = dist(S, a, c)
                    if dac >= dab - eps:
                        break
                    j = pos[c]
                    if side == 0:
                        if j == n - 1:
                            if not fix_end and dab - dac > eps:  # a -> last: reverse suffix
                                _reverse(path, pos, i + 1, n - 1)
                                _wake(active, a, b, c, c)
                                made += 1
                                break
                            continue
                        d = path[j + 1]
                    else:
                        if j == 0:
                            if not fix_start and dab - dac > eps:
                                _reverse(path, pos, 0, i - 1)
                                _wake(active, a, b, c, c)
                                made += 1
                                break
                            continue
                        d = path[j - 1]
                    if d == a or c == b:
                        continue
                    gain = dab + dist(S, c, d) - dac - dist(S, b, d)
                    if gain > eps:
                        if side == 0:
                            if j > i:
                                _reverse(path, pos, i + 1, j)
                            else:
                                _reverse(path, pos, j + 1, i)
                        else:
                            if j < i:
                                _reverse(path, pos, j, i - 1)
                            else:
                                _reverse(path, pos, i, j - 1)
                        _wake(active, a, b, c, d)
                        made += 1
                        break
            # ---- Or-opt: the segment of L frames starting at a moved next to a neighbour
            for L in range(1, 4):
                i = pos[a]
                if i == 0 or i + L > n - 1:
                    break
                p = path[i - 1]
                s0 = path[i]
                sl = path[i + L - 1]
                q = path[i + L]
                g1 = dist(S, p, s0) + dist(S, sl, q) - dist(S, p, q)
                if g1 <= eps:
                    continue
                done = False
                for end in range(2):
                    x = s0 if end == 0 else sl
                    for m in range(k):
                        c = nb[x, m]
                        dxc = dist(S, x, c)
                        if dxc >= g1 - eps:
                            break
                        j = pos[c]
                        if j >= i - 1 and j <= i + L:
                            continue
                        for side in range(2):  # insert between (c, succ c) or (pred c, c)
                            if side == 0:
                                if j == n - 1:
                                    continue
                                e = path[j + 1]
                                if pos[e] >= i and pos[e] < i + L:
                                    continue
                                # ... c x ... e: x next to c
                                other = sl if end == 0 else s0
                                add = dxc + dist(S, other, e) - dist(S, c, e)
                                if g1 - add > eps:
                                    # c, then the segment starting with x
                                    _move(path, pos, i, L, j, end == 1, buf)
                                    _wake(active, c, e, c, e)
                                    done = True
                            else:
                                if j == 0:
                                    continue
                                e = path[j - 1]
                                if pos[e] >= i and pos[e] < i + L:
                                    continue
                                other = sl if end == 0 else s0
                                add = dxc + dist(S, other, e) - dist(S, c, e)
                                if g1 - add > eps:
                                    # e, segment ending with x, c
                                    _move(path, pos, i, L, j - 1, end == 0, buf)
                                    _wake(active, c, e, c, e)
                                    done = True
                            if done:
                                break
                        if done:
                            break
                    if done:
                        break
                if done:
                    _wake(active, p, s0, sl, q)
                    made += 1
                    break
        moves += made
        if made == 0:
            break
    return moves


@njit(cache=True, nogil=True)
def path_length(S, path):
    s = 0.0
    for i in range(len(path) - 1):
        s += dist(S, path[i], path[i + 1])
    return s


@njit(cache=True, nogil=True)
def greedy_edges(o, u, v, deg, cap, oe, adj, edges, n, e0, e1):
    """Add the edges ``(u[e], v[e])`` in the order ``o`` (see :func:`reseq.graph.sparse._greedy`;
    ``e0``, ``e1``: the two fixed ends, or -1); returns the number of edges now in the path."""
    for t in range(len(o)):
        e = o[t]
        a = u[e]
        b = v[e]
        if deg[a] >= cap[a] or deg[b] >= cap[b] or oe[a] == b:
            continue
        ea = oe[a]
        eb = oe[b]
        if e0 >= 0 and edges + 1 < n - 1 and ((ea == e0 and eb == e1) or (ea == e1 and eb == e0)):
            continue
        oe[ea] = eb
        oe[eb] = ea
        adj[a, deg[a]] = b
        adj[b, deg[b]] = a
        deg[a] += 1
        deg[b] += 1
        edges += 1
        if edges == n - 1:
            break
    return edges
