"""Compiled (numba) kernels of the near-optimal TSP solver in :mod:`reseq.graph.tsp`.

A tour is an array ``t`` of node ids and its inverse ``pos``. Every change to it is a 2-opt move
(:func:`_move2`, reversing the shorter side), so Or-opt segment moves and double-bridge kicks
are short sequences of 2-opt moves, and undoing a rejected kick replays the journal of moves in
reverse. Distances are float64, read from ``D`` except for an optional dummy node ``nd`` (the
path-to-cycle reduction) whose distances are the vector ``w``. Random numbers come from our own
xorshift64* generator seeded by the caller, so a run depends only on its inputs: no clock, no
global state, no fast-math (IEEE results are the same on every x86-64 / arm64 machine).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["ils", "local_search"]

GEO = 0  # per cent of kicks that are geometric (the rest: segment kicks)
TAU = 0.0  # threshold acceptance: a kick is kept when it lengthens the tour by < TAU x mean step
_U12 = np.uint64(12)
_U25 = np.uint64(25)
_U27 = np.uint64(27)
_U33 = np.uint64(33)
_MUL = np.uint64(2685821657736338717)


@njit(cache=True)
def _rand(state, m):
    """Uniform integer in [0, m) (xorshift64*)."""
    x = state[0]
    x ^= x >> _U12
    x ^= x << _U25
    x ^= x >> _U27
    state[0] = x
    return np.int64(((x * _MUL) >> _U33) % np.uint64(m))


@njit(cache=True, inline="always")
def _w(i, n):
    """i mod n for -n <= i < 2n (no integer division)."""
    if i >= n:
        return i - n
    if i < 0:
        return i + n
    return i


# The distance between nodes i and j is written out in place as
#     (w[j] if i == nd else (w[i] if j == nd else D[i, j]))
# (a helper function costs a call with reference counting per lookup: 3-5x slower).


@njit(cache=True)
def tour_cost(D, w, nd, t):
    n = len(t)
    c = 0.0
    for i in range(n):
        a = t[i]
        b = t[_w(i + 1, n)]
        c += w[b] if a == nd else (w[a] if b == nd else D[a, b])
    return c


@njit(cache=True)
def _reverse(t, pos, i, j, n):
    """Reverse the cyclic stretch of positions i..j (inclusive)."""
    m = _w(j - i, n) + 1
    for _ in range(m // 2):
        a = t[i]
        b = t[j]
        t[i] = b
        pos[b] = i
        t[j] = a
        pos[a] = j
        i += 1
        if i == n:
            i = 0
        j -= 1
        if j < 0:
            j = n - 1


@njit(cache=True)
def _move2(t, pos, a, b, c, d, jr, st):
    """Remove tour edges (a, b), (c, d), add (a, c), (b, d).

    The two edges must run the same way round the tour (a -> b and c -> d, or b -> a and
    d -> c). The move is journaled in ``jr`` (``st[2]`` entries, ``st[3]`` = 1 on overflow)
    when ``st[4]`` is set.
    """
    n = len(t)
    if st[4] == 1:
        k = st[2]
        if k < jr.shape[0]:
            jr[k, 0] = a
            jr[k, 1] = b
            jr[k, 2] = c
            jr[k, 3] = d
            st[2] = k + 1
        else:
            st[3] = 1
    if t[_w(pos[a] + 1, n)] != b:
        a, b, c, d = d, c, b, a
    i = pos[b]
    j = pos[c]
    m = _w(j - i, n) + 1
    if 2 * m > n:
        i = pos[d]
        j = pos[a]
    _reverse(t, pos, i, j, n)


@njit(cache=True)
def _or_apply(t, pos, pt, s1, sl, nxt, ct, dt, want_c, want_a, jr, st):
    """Move the segment s1..sl (pt -> s1 .. sl -> nxt) between ct -> dt, all in one direction.

    The result has the edge (want_c, want_a) where want_c is ct or dt and want_a is s1 or sl.
    """
    _move2(t, pos, pt, s1, ct, dt, jr, st)
    _move2(t, pos, pt, ct, nxt, sl, jr, st)
    # now ct - sl ... s1 - dt
    if s1 != sl and not ((want_c == ct and want_a == sl) or (want_c == dt and want_a == s1)):
        _move2(t, pos, ct, sl, s1, dt, jr, st)


@njit(cache=True)
def _push(v, q, inq, st):
    if inq[v] == 0:
        n = len(q)
        inq[v] = 1
        q[_w(st[0] + st[1], n)] = v
        st[1] += 1


@njit(cache=True)
def _improve(D, w, nd, nb, nbd, t, pos, a, eps, use_or, q, inq, jr, st):
    """Apply the best improving 2-opt / Or-opt move around node ``a``; return its gain (0 if
    none). The nodes whose edges changed are queued."""
    n = len(t)
    K = nb.shape[1]
    pa = pos[a]
    best = eps
    kind = 0
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = 0
    # 2-opt: a's edge to its successor (dr 0) or predecessor (dr 1)
    for dr in range(2):
        b = t[_w(pa + 1, n)] if dr == 0 else t[_w(pa - 1 + n, n)]
        dab = (w[b] if a == nd else (w[a] if b == nd else D[a, b]))
        for k in range(K):
            c = nb[a, k]
            g1 = dab - nbd[a, k]
            if g1 <= eps:
                break
            pc = pos[c]
            d = t[_w(pc + 1, n)] if dr == 0 else t[_w(pc - 1 + n, n)]
            if c == b or d == a:
                continue
            g = g1 + (w[d] if c == nd else (w[c] if d == nd else D[c, d])) - (w[d] if b == nd else (w[b] if d == nd else D[b, d]))
            if g > best:
                best = g
                kind = 1
                if dr == 0:
                    m0, m1, m2, m3 = a, b, c, d
                else:
                    m0, m1, m2, m3 = b, a, d, c
    # Or-opt: a segment of 1..3 nodes with a at one end, moved next to a neighbour c of a
    if use_or and n >= 8:
        for dr in range(2):
            for L in range(1, 4):
                if L == 1 and dr == 1:
                    continue
                if dr == 0:
                    o = t[_w(pa + L - 1, n)]
                    p = t[_w(pa - 1 + n, n)]
                    nx = t[_w(pa + L, n)]
                else:
                    o = t[_w(pa - L + 1 + n, n)]
                    p = t[_w(pa + 1, n)]
                    nx = t[_w(pa - L + n, n)]
                rem = (w[a] if p == nd else (w[p] if a == nd else D[p, a])) + (w[nx] if o == nd else (w[o] if nx == nd else D[o, nx])) - (w[nx] if p == nd else (w[p] if nx == nd else D[p, nx]))
                if rem <= best:
                    continue
                for k in range(K):
                    c = nb[a, k]
                    dac = nbd[a, k]
                    if dac >= rem - best:
                        break
                    pc = pos[c]
                    offc = _w(pc - pa, n) if dr == 0 else _w(pa - pc, n)
                    if offc <= L or offc >= n - 1:
                        continue
                    for side in range(2):
                        d = t[_w(pc + 1, n)] if side == 0 else t[_w(pc - 1 + n, n)]
                        pd = pos[d]
                        offd = _w(pd - pa, n) if dr == 0 else _w(pa - pd, n)
                        if offd <= L or offd >= n - 1:
                            continue
                        g = rem - dac - (w[d] if o == nd else (w[o] if d == nd else D[o, d])) + (w[d] if c == nd else (w[c] if d == nd else D[c, d]))
                        if g > best:
                            best = g
                            kind = 2
                            m0, m1, m2, m3, m4, m5, m6 = a, o, p, nx, c, d, dr
    # Or-3opt (only where no 2-opt / Or-opt move improves): t1 = a, t2 = next(a), t3 near t2,
    # t4 = next(t3), t5 near t4 inside t2..t3, t6 next to t5: swap the segments t2..t5 and
    # t6..t3 (or reverse both); segments of any length
    if use_or and n >= 8 and kind == 0:
        for dr in range(2):
            t2 = t[_w(pa + 1, n)] if dr == 0 else t[_w(pa - 1 + n, n)]
            d12 = (w[t2] if a == nd else (w[a] if t2 == nd else D[a, t2]))
            p2 = pos[t2]
            for k in range(K):
                t3 = nb[t2, k]
                g1 = d12 - nbd[t2, k]
                if g1 <= best:
                    break
                if t3 == a:
                    continue
                p3 = pos[t3]
                t4 = t[_w(p3 + 1, n)] if dr == 0 else t[_w(p3 - 1 + n, n)]
                if t4 == a:
                    continue
                off3 = _w(p3 - p2, n) if dr == 0 else _w(p2 - p3, n)
                g2 = g1 + (w[t4] if t3 == nd else (w[t3] if t4 == nd else D[t3, t4]))
                for k2 in range(K):
                    t5 = nb[t4, k2]
                    g3 = g2 - nbd[t4, k2]
                    if g3 <= best:
                        break
                    p5 = pos[t5]
                    off5 = _w(p5 - p2, n) if dr == 0 else _w(p2 - p5, n)
                    if off5 > off3:
                        continue
                    for side in range(2):
                        if side == 0:  # t6 after t5: pure segment swap
                            if t5 == t3:
                                continue
                            t6 = t[_w(p5 + 1, n)] if dr == 0 else t[_w(p5 - 1 + n, n)]
                        else:  # t6 before t5: both segments reversed
                            if t5 == t2:
                                continue
                            t6 = t[_w(p5 - 1 + n, n)] if dr == 0 else t[_w(p5 + 1, n)]
                        g = g3 + (w[t6] if t5 == nd else (w[t5] if t6 == nd else D[t5, t6])) - (w[a] if t6 == nd else (w[t6] if a == nd else D[t6, a]))
                        if g > best:
                            best = g
                            kind = 3 + side
                            m0, m1, m2, m3, m4, m5 = a, t2, t3, t4, t5, t6
    if kind == 0:
        return 0.0
    if kind >= 3:
        t1, t2, t3, t4, t5, t6 = m0, m1, m2, m3, m4, m5
        if kind == 3:  # t1 [t2..t5][t6..t3] t4 -> t1 [t6..t3][t2..t5] t4
            _or_apply(t, pos, t1, t2, t5, t6, t3, t4, t3, t2, jr, st)
        else:  # t1 [t2..t6][t5..t3] t4 -> t1 [t6..t2][t3..t5] t4
            _move2(t, pos, t1, t2, t6, t5, jr, st)
            _move2(t, pos, t2, t5, t3, t4, jr, st)
        _push(t1, q, inq, st)
        _push(t2, q, inq, st)
        _push(t3, q, inq, st)
        _push(t4, q, inq, st)
        _push(t5, q, inq, st)
        _push(t6, q, inq, st)
        return best
    if kind == 1:
        _move2(t, pos, m0, m1, m2, m3, jr, st)
        _push(m0, q, inq, st)
        _push(m1, q, inq, st)
        _push(m2, q, inq, st)
        _push(m3, q, inq, st)
        return best
    a, o, p, nx, c, d, dr = m0, m1, m2, m3, m4, m5, m6
    if dr == 0:
        s1, sl, pt, nxt = a, o, p, nx
    else:
        s1, sl, pt, nxt = o, a, nx, p
    if t[_w(pos[c] + 1, n)] == d:
        ct, dt = c, d
    else:
        ct, dt = d, c
    _or_apply(t, pos, pt, s1, sl, nxt, ct, dt, c, a, jr, st)
    _push(a, q, inq, st)
    _push(o, q, inq, st)
    _push(p, q, inq, st)
    _push(nx, q, inq, st)
    _push(c, q, inq, st)
    _push(d, q, inq, st)
    return best


@njit(cache=True)
def _run_queue(D, w, nd, nb, nbd, t, pos, eps, use_or, q, inq, jr, st):
    """Process the don't-look-bit queue until empty; return the total gain."""
    n = len(t)
    gain = 0.0
    while st[1] > 0:
        a = q[st[0]]
        st[0] = _w(st[0] + 1, n)
        st[1] -= 1
        inq[a] = 0
        g = _improve(D, w, nd, nb, nbd, t, pos, a, eps, use_or, q, inq, jr, st)
        if g > 0.0:
            gain += g
            _push(a, q, inq, st)
    return gain


def _state(n: int):
    # st: queue head, queue length, journal length, journal overflow, journaling on
    return (np.zeros(n, np.int64), np.zeros(n, np.uint8),
            np.zeros((16 * n + 4096, 4), np.int64), np.zeros(5, np.int64))


@njit(cache=True)
def _local_search(D, w, nd, nb, nbd, t, eps, use_or, q, inq, jr, st):
    n = len(t)
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[t[i]] = i
    st[0] = 0
    st[1] = 0
    st[4] = 0
    for i in range(n):
        _push(t[i], q, inq, st)
    _run_queue(D, w, nd, nb, nbd, t, pos, eps, use_or, q, inq, jr, st)
    return pos


@njit(cache=True)
def neighbour_distances(D, w, nd, nb):
    """``nbd[i, k]`` = distance from ``i`` to its ``k``-th candidate ``nb[i, k]``."""
    out = np.empty(nb.shape, np.float64)
    for i in range(nb.shape[0]):
        for k in range(nb.shape[1]):
            j = nb[i, k]
            out[i, k] = w[j] if i == nd else (w[i] if j == nd else D[i, j])
    return out


def local_search(D, w, nd, nb, t, eps, use_or=True):
    """2-opt + Or-opt + Or-3opt local search of the tour ``t`` in place; returns its cost."""
    nbd = neighbour_distances(D, w, nd, nb)
    q, inq, jr, st = _state(len(t))
    _local_search(D, w, nd, nb, nbd, t, eps, use_or, q, inq, jr, st)
    return tour_cost(D, w, nd, t)


@njit(cache=True)
def _ils(D, w, nd, nb, nbd, t, pos, cost, eps, kicks, span, rng, q, inq, jr, st, bt, tau,
         geo):
    """``kicks`` iterations of: a local segment kick (x A B C y -> x C B A y, segments of
    1..span nodes at a random place), local search from its ends, keep if shorter else undo."""
    n = len(t)
    if n < 8:
        return cost
    best = cost
    bt[:] = t
    thr = tau * cost / n
    done = 0
    tries = 0
    while done < kicks and tries < 4 * kicks + 100:
        tries += 1
        if _rand(rng, 100) < geo:
            # geometric kick: cut next to a random node and three nodes a short random walk
            # over the candidate lists away (close in space, possibly far along the tour)
            K = nb.shape[1]
            v = _rand(rng, n)
            u1 = nb[v, _rand(rng, K)]
            u2 = nb[u1, _rand(rng, K)]
            u3 = nb[u2, _rand(rng, K)]
            c4 = np.sort(np.array([pos[v], pos[u1], pos[u2], pos[u3]]))
            if c4[0] == c4[1] or c4[1] == c4[2] or c4[2] == c4[3] or (
                    c4[0] == 0 and c4[3] == n - 1):
                continue
            i = c4[0]
            l1 = c4[1] - c4[0]
            l2 = c4[2] - c4[1]
            l3 = c4[3] - c4[2]
        else:
            l1 = 1 + _rand(rng, span)
            l2 = 1 + _rand(rng, span)
            l3 = 1 + _rand(rng, span)
            if l1 + l2 + l3 + 2 > n:
                l1 = (n - 2) // 3
                l2 = l1
                l3 = l1
            i = _rand(rng, n)
        x = t[i]
        a0 = t[_w(i + 1, n)]
        a1 = t[_w(i + l1, n)]
        b0 = t[_w(i + l1 + 1, n)]
        b1 = t[_w(i + l1 + l2, n)]
        c0 = t[_w(i + l1 + l2 + 1, n)]
        c1 = t[_w(i + l1 + l2 + l3, n)]
        y = t[_w(i + l1 + l2 + l3 + 1, n)]
        if nd >= 0 and (x == nd or a0 == nd or a1 == nd or b0 == nd or b1 == nd
                        or c0 == nd or c1 == nd or y == nd):
            continue
        done += 1
        delta = ((w[c0] if x == nd else (w[x] if c0 == nd else D[x, c0])) + (w[b0] if c1 == nd else (w[c1] if b0 == nd else D[c1, b0])) + (w[a0] if b1 == nd else (w[b1] if a0 == nd else D[b1, a0]))
                 + (w[y] if a1 == nd else (w[a1] if y == nd else D[a1, y])) - (w[a0] if x == nd else (w[x] if a0 == nd else D[x, a0])) - (w[b0] if a1 == nd else (w[a1] if b0 == nd else D[a1, b0]))
                 - (w[c0] if b1 == nd else (w[b1] if c0 == nd else D[b1, c0])) - (w[y] if c1 == nd else (w[c1] if y == nd else D[c1, y])))
        st[2] = 0
        st[3] = 0
        st[4] = 1
        # x A B C y -> x C B A y (a 4-change: no single 2-opt / Or-opt / Or-3opt move undoes it)
        _move2(t, pos, x, a0, c1, y, jr, st)
        _move2(t, pos, x, c1, c0, b1, jr, st)
        _move2(t, pos, c1, b1, b0, a1, jr, st)
        _move2(t, pos, b1, a1, a0, y, jr, st)
        _push(x, q, inq, st)
        _push(a0, q, inq, st)
        _push(a1, q, inq, st)
        _push(b0, q, inq, st)
        _push(b1, q, inq, st)
        _push(c0, q, inq, st)
        _push(c1, q, inq, st)
        _push(y, q, inq, st)
        g = _run_queue(D, w, nd, nb, nbd, t, pos, eps, True, q, inq, jr, st)
        new = cost + delta - g
        if new < cost + thr or st[3] == 1:
            cost = new
            if cost < best - eps:
                best = cost
                bt[:] = t
        else:
            st[4] = 0
            for k in range(st[2] - 1, -1, -1):
                _move2(t, pos, jr[k, 0], jr[k, 2], jr[k, 1], jr[k, 3], jr, st)
        if done % 256 == 0 and cost > best + eps:
            # back to the best tour now and then: the walk may not drift far
            t[:] = bt
            for i in range(n):
                pos[t[i]] = i
            cost = best
    st[4] = 0
    if cost > best:
        t[:] = bt
        for i in range(n):
            pos[t[i]] = i
        cost = best
    return cost


def ils(D, w, nd, nb, t, eps, kicks, span, rng_state, chunk=None, deadline=None, tau=TAU,
        geo=GEO):
    """Local search then iterated local search of ``t`` in place; returns the exact cost.

    ``rng_state`` is a 1-element uint64 array (advanced in place). With ``deadline`` (a
    ``time.perf_counter()`` value) the kicks run in chunks and stop once it has passed.
    """
    import time

    nbd = neighbour_distances(D, w, nd, nb)
    q, inq, jr, st = _state(len(t))
    pos = _local_search(D, w, nd, nb, nbd, t, eps, True, q, inq, jr, st)
    cost = tour_cost(D, w, nd, t)
    bt = t.copy()
    if deadline is None:
        _ils(D, w, nd, nb, nbd, t, pos, cost, eps, kicks, span, rng_state, q, inq, jr, st, bt,
             tau, geo)
    else:
        chunk = chunk or max(256, kicks // 64)
        left = kicks
        while left > 0 and time.perf_counter() < deadline:
            k = min(chunk, left)
            cost = _ils(D, w, nd, nb, nbd, t, pos, cost, eps, k, span, rng_state, q, inq, jr, st,
                        bt, tau, geo)
            left -= k
    return tour_cost(D, w, nd, t)
