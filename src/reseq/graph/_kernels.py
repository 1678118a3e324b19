"""Compiled (numba) kernels of the near-optimal TSP solver in :mod:`reseq.graph.tsp`.

A tour is an array ``t`` of node ids and its inverse ``pos``. Every change to it is a 2-opt move
(:func:`_move2`, reversing the shorter side), so Or-opt segment moves, Lin-Kernighan chains
(:func:`_lk`) and double-bridge kicks are short sequences of 2-opt moves, and undoing a rejected
kick or chain replays the journal of moves in reverse. Candidate lists come from
:func:`alpha_nearest` after the subgradient :func:`ascent` (dense O(N^2) passes). Distances are float64, read from ``D`` except for an optional dummy node ``nd`` (the
path-to-cycle reduction) whose distances are the vector ``w``. Random numbers come from our own
xorshift64* generator seeded by the caller, so a run depends only on its inputs: no clock, no
global state, no fast-math (IEEE results are the same on every x86-64 / arm64 machine).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["alpha_nearest", "ascent", "ils", "local_search", "prim"]

GEO = 0  # per cent of kicks that are geometric (the rest: segment kicks)
LK = 20  # depth of the Lin-Kernighan move (0: none)
LKB = 5  # its breadth at the first level
TAU = 0.3  # threshold acceptance: a kick is kept when it lengthens the tour by < TAU x mean step
_U12 = np.uint64(12)
_U25 = np.uint64(25)
_U27 = np.uint64(27)
_U33 = np.uint64(33)
_MUL = np.uint64(2685821657736338717)


@njit(cache=True, nogil=True)
def _rand(state, m):
    """Uniform integer in [0, m) (xorshift64*)."""
    x = state[0]
    x ^= x >> _U12
    x ^= x << _U25
    x ^= x >> _U27
    state[0] = x
    return np.int64(((x * _MUL) >> _U33) % np.uint64(m))


@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True)
def tour_cost(D, w, nd, t):
    n = len(t)
    c = 0.0
    for i in range(n):
        a = t[i]
        b = t[_w(i + 1, n)]
        c += w[b] if a == nd else (w[a] if b == nd else D[a, b])
    return c


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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
    st[5] += 1
    _reverse(t, pos, i, j, n)


@njit(cache=True, nogil=True)
def _undo(t, pos, jr, st, j):
    """Undo the journaled moves past entry ``j`` (newest first) and truncate the journal there;
    leaves journaling off."""
    st[4] = 0
    for k in range(st[2] - 1, j - 1, -1):
        _move2(t, pos, jr[k, 0], jr[k, 2], jr[k, 1], jr[k, 3], jr, st)
    st[2] = j


@njit(cache=True, nogil=True)
def _or_apply(t, pos, pt, s1, sl, nxt, ct, dt, want_c, want_a, jr, st):
    """Move the segment s1..sl (pt -> s1 .. sl -> nxt) between ct -> dt, all in one direction.

    The result has the edge (want_c, want_a) where want_c is ct or dt and want_a is s1 or sl.
    """
    _move2(t, pos, pt, s1, ct, dt, jr, st)
    _move2(t, pos, pt, ct, nxt, sl, jr, st)
    # now ct - sl ... s1 - dt
    if s1 != sl and not ((want_c == ct and want_a == sl) or (want_c == dt and want_a == s1)):
        _move2(t, pos, ct, sl, s1, dt, jr, st)


@njit(cache=True, nogil=True)
def _push(v, q, inq, st):
    if inq[v] == 0:
        n = len(q)
        inq[v] = 1
        q[_w(st[0] + st[1], n)] = v
        st[1] += 1


@njit(cache=True, nogil=True)
def _improve(D, w, nd, nb, nbd, t, pos, a, eps, mode, q, inq, jr, st):
    """Apply the best improving 2-opt / Or-opt move around node ``a``; return its gain (0 if
    none). The nodes whose edges changed are queued."""
    n = len(t)
    K = nb.shape[1]
    pa = pos[a]
    best = eps
    kind = 0
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = 0
    # 2-opt: a's edge to its successor (dr 0) or predecessor (dr 1)
    for dr in range(2 if mode != 3 else 0):
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
    if (mode == 1 or mode == 2) and n >= 8:
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
    if (mode == 1 or mode == 3) and n >= 8 and kind == 0:
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


@njit(cache=True, nogil=True)
def _lk(D, w, nd, nb, nbd, t, pos, a, eps, lk, lkb, q, inq, jr, st, added):
    """Lin-Kernighan move from ``a`` made of successive 2-opt flips (depth <= ``lk``).

    t1 = a, t2 = its tour neighbour; each level picks t3 among t2's candidates with a positive
    partial gain (best by one-step look-ahead; the first ``lkb`` candidates are tried at the
    first level),
    flips so that t4, t3's neighbour, becomes t1's neighbour, and goes on from t4. The best
    closing point is kept and the flips past it undone. Edges added in this move are never
    removed again; the dummy node is never touched (its edges encode fixed path ends)."""
    n = len(t)
    K = nb.shape[1]
    B = min(lkb, K)
    if a == nd or n < 8 or st[2] + lk + 8 >= jr.shape[0]:
        return 0.0
    flag = st[4]
    j0 = st[2]
    st[4] = 1
    for dr0 in range(2):
        for k1 in range(B):
            t1 = a
            p1 = pos[t1]
            t2 = t[_w(p1 + 1, n)] if dr0 == 0 else t[_w(p1 - 1 + n, n)]
            if t2 == nd:
                break
            g1 = (w[t2] if t1 == nd else (w[t1] if t2 == nd else D[t1, t2])) - nbd[t2, k1]
            if g1 <= eps:
                break
            t3 = nb[t2, k1]
            if t3 == t1 or t3 == nd:
                continue
            p3 = pos[t3]
            if dr0 == 0:
                if t[_w(pos[t2] + 1, n)] == t3:
                    continue
                t4 = t[_w(p3 - 1 + n, n)]
            else:
                if t[_w(pos[t2] - 1 + n, n)] == t3:
                    continue
                t4 = t[_w(p3 + 1, n)]
            if t4 == nd:
                continue
            _move2(t, pos, t1, t2, t4, t3, jr, st)
            added[0, 0] = t2
            added[0, 1] = t3
            na = 1
            G = g1 + (w[t4] if t3 == nd else (w[t3] if t4 == nd else D[t3, t4]))
            bestg = G - (w[t1] if t4 == nd else (w[t4] if t1 == nd else D[t4, t1]))
            bestj = st[2]
            cur = t4
            for _ in range(1, lk):
                p1 = pos[t1]
                dr = 0 if t[_w(p1 + 1, n)] == cur else 1
                pc = pos[cur]
                nxc = t[_w(pc + 1, n)] if dr == 0 else t[_w(pc - 1 + n, n)]
                bv = -1.0
                b5 = -1
                b6 = -1
                bg = 0.0
                for k in range(K):
                    t5 = nb[cur, k]
                    g = G - nbd[cur, k]
                    if g <= eps or g <= bestg:
                        break
                    if t5 == t1 or t5 == nxc or t5 == nd:
                        continue
                    p5 = pos[t5]
                    t6 = t[_w(p5 - 1 + n, n)] if dr == 0 else t[_w(p5 + 1, n)]
                    if t6 == nd:
                        continue
                    taboo = False
                    for e in range(na):
                        if (added[e, 0] == t5 and added[e, 1] == t6) or (
                                added[e, 0] == t6 and added[e, 1] == t5):
                            taboo = True
                            break
                    if taboo:
                        continue
                    v = g + D[t5, t6]
                    if v > bv:
                        bv = v
                        b5 = t5
                        b6 = t6
                        bg = g
                if b5 < 0:
                    break
                _move2(t, pos, t1, cur, b6, b5, jr, st)
                added[na, 0] = cur
                added[na, 1] = b5
                na += 1
                G = bv
                closed = G - D[b6, t1]
                if closed > bestg:
                    bestg = closed
                    bestj = st[2]
                cur = b6
                if bg <= eps:
                    break
            _undo(t, pos, jr, st, bestj)  # the flips past the best closing point
            if bestg > eps:
                for k in range(j0, bestj):
                    for c in range(4):
                        _push(jr[k, c], q, inq, st)
                if flag == 0:
                    st[2] = j0
                st[4] = flag
                return bestg
            _undo(t, pos, jr, st, j0)
            st[4] = 1
    st[4] = flag
    return 0.0


@njit(cache=True, nogil=True)
def _run_queue(D, w, nd, nb, nbd, t, pos, eps, use_or, q, inq, jr, st, lk, lkb, added):
    """Process the don't-look-bit queue until empty; return the total gain."""
    n = len(t)
    gain = 0.0
    while st[1] > 0:
        a = q[st[0]]
        st[0] = _w(st[0] + 1, n)
        st[1] -= 1
        inq[a] = 0
        if lk > 1 and use_or == 1:
            # cheap moves first, then the Lin-Kernighan chain, then Or-3opt
            g = _improve(D, w, nd, nb, nbd, t, pos, a, eps, 2, q, inq, jr, st)
            if g == 0.0:
                g = _lk(D, w, nd, nb, nbd, t, pos, a, eps, lk, lkb, q, inq, jr, st, added)
            if g == 0.0:
                g = _improve(D, w, nd, nb, nbd, t, pos, a, eps, 3, q, inq, jr, st)
        else:
            g = _improve(D, w, nd, nb, nbd, t, pos, a, eps, use_or, q, inq, jr, st)
            if g == 0.0 and lk > 1:
                g = _lk(D, w, nd, nb, nbd, t, pos, a, eps, lk, lkb, q, inq, jr, st, added)
        if g > 0.0:
            gain += g
            _push(a, q, inq, st)
    return gain


def _added(lk: int) -> np.ndarray:
    return np.zeros((max(lk, 1) + 1, 2), np.int64)


def _state(n: int):
    # st: queue head, queue length, journal length, journal overflow, journaling on, flips made
    return (np.zeros(n, np.int64), np.zeros(n, np.uint8),
            np.zeros((16 * n + 4096, 4), np.int64), np.zeros(6, np.int64))


@njit(cache=True, nogil=True)
def _local_search(D, w, nd, nb, nbd, t, eps, use_or, q, inq, jr, st, lk, lkb, added):
    n = len(t)
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[t[i]] = i
    st[0] = 0
    st[1] = 0
    st[4] = 0
    for i in range(n):
        _push(t[i], q, inq, st)
    _run_queue(D, w, nd, nb, nbd, t, pos, eps, use_or, q, inq, jr, st, lk, lkb, added)
    return pos


@njit(cache=True, nogil=True)
def prim(D, pi):
    """Minimum spanning tree of D[i, j] + pi[i] + pi[j] from node 0 (dense Prim): parent of
    every node, the nodes in the order added, and the tree's weight."""
    n = D.shape[0]
    dad = np.zeros(n, np.int64)
    topo = np.empty(n, np.int64)
    key = np.full(n, np.inf)
    done = np.zeros(n, np.uint8)
    key[0] = 0.0
    total = 0.0
    for m in range(n):
        v = -1
        bk = np.inf
        for j in range(n):
            if done[j] == 0 and (v < 0 or key[j] < bk):
                v = j
                bk = key[j]
        done[v] = 1
        topo[m] = v
        total += bk
        pv = pi[v]
        for j in range(n):
            if done[j] == 0:
                c = D[v, j] + pv + pi[j]
                if c < key[j]:
                    key[j] = c
                    dad[j] = v
    return dad, topo, total


@njit(cache=True, nogil=True)
def ascent(D, upper, iters):
    """Held-Karp subgradient ascent: node penalties ``pi`` that make the minimum 1-tree of
    D[i, j] + pi[i] + pi[j] as tour-like as possible (every degree 2), as in LKH. The 1-tree is
    the spanning tree plus the second-cheapest edge at a leaf; the step is Polyak's,
    lam (upper - bound) / |deg - 2|^2, with lam halved when the bound stalls. Returns the
    penalties of the best lower bound found, and that bound."""
    n = D.shape[0]
    pi = np.zeros(n)
    best_pi = pi.copy()
    best_w = -np.inf
    deg = np.zeros(n, np.int64)
    v = np.zeros(n)
    lam = 2.0
    stall = 0
    for _ in range(iters):
        dad, topo, total = prim(D, pi)
        deg[:] = 0
        for m in range(1, n):
            j = topo[m]
            deg[j] += 1
            deg[dad[j]] += 1
        # close the 1-tree: the leaf whose second-cheapest edge is longest gets it
        wl = -np.inf
        la = -1
        lb = -1
        for i in range(n):
            if deg[i] != 1:
                continue
            p = dad[i] if topo[0] != i else -1
            c2 = np.inf
            b2 = -1
            for j in range(n):
                if j == i or j == p or (dad[j] == i and topo[0] != j):
                    continue
                c = D[i, j] + pi[i] + pi[j]
                if c < c2:
                    c2 = c
                    b2 = j
            if b2 >= 0 and c2 > wl:
                wl = c2
                la = i
                lb = b2
        if la < 0:
            break
        deg[la] += 1
        deg[lb] += 1
        s = 0.0
        norm = 0.0
        for i in range(n):
            s += pi[i]
            v[i] = deg[i] - 2
            norm += v[i] * v[i]
        w = total + wl - 2.0 * s
        if w > best_w + 1e-12 * abs(w):
            best_w = w
            best_pi[:] = pi
            stall = 0
        else:
            stall += 1
            if stall >= 5:
                lam *= 0.5
                stall = 0
        if norm == 0.0 or upper <= w:
            best_pi[:] = pi
            best_w = w
            break
        step = lam * (upper - w) / norm
        for i in range(n):
            pi[i] += step * v[i]
        if lam < 1e-4:
            break
    return best_pi, best_w


@njit(cache=True, nogil=True)
def alpha_nearest(D, pi, dad, topo, k):
    """The ``k`` alpha-nearest candidates of every node (Helsgaun's alpha-nearness on the
    minimum spanning tree given by ``dad``/``topo``, Prim's order from ``topo[0]``).

    alpha(i, j) = D[i, j] - (the longest tree edge on the path from i to j): 0 for tree edges,
    small for an edge that would replace a long tree edge. Ties go to the shorter edge, then
    the lower index. Distances are transformed, D[i, j] + pi[i] + pi[j] (see :func:`ascent`).
    O(N^2) time, O(N k) memory."""
    n = D.shape[0]
    k = min(k, n - 1)
    out = np.empty((n, k), np.int64)
    beta = np.empty(n)
    mark = np.full(n, -1, np.int64)
    ka = np.empty(k)
    kd = np.empty(k)
    root = topo[0]
    for i in range(n):
        beta[i] = -np.inf
        mark[i] = i
        j = i
        while j != root:
            p = dad[j]
            b = D[j, p] + pi[j] + pi[p]
            beta[p] = beta[j] if beta[j] > b else b
            mark[p] = i
            j = p
        for m in range(1, n):
            j = topo[m]
            if mark[j] != i:
                p = dad[j]
                b = D[j, p] + pi[j] + pi[p]
                beta[j] = beta[p] if beta[p] > b else b
        cnt = 0
        for j in range(n):
            if j == i:
                continue
            d = D[i, j]
            a = d + pi[i] + pi[j] - beta[j]
            if cnt == k and (a > ka[k - 1] or (a == ka[k - 1] and d >= kd[k - 1])):
                continue
            # insertion into the sorted top-k (ties: shorter edge, then lower index)
            m = cnt if cnt < k else k - 1
            while m > 0 and (ka[m - 1] > a or (ka[m - 1] == a and kd[m - 1] > d)):
                if m < k:
                    ka[m] = ka[m - 1]
                    kd[m] = kd[m - 1]
                    out[i, m] = out[i, m - 1]
                m -= 1
            ka[m] = a
            kd[m] = d
            out[i, m] = j
            if cnt < k:
                cnt += 1
    return out


@njit(cache=True, nogil=True)
def neighbour_distances(D, w, nd, nb):
    """``nbd[i, k]`` = distance from ``i`` to its ``k``-th candidate ``nb[i, k]``."""
    out = np.empty(nb.shape, np.float64)
    for i in range(nb.shape[0]):
        for k in range(nb.shape[1]):
            j = nb[i, k]
            out[i, k] = w[j] if i == nd else (w[i] if j == nd else D[i, j])
    return out


def local_search(D, w, nd, nb, t, eps, use_or=True, lk=LK, lkb=LKB):
    """2-opt + Or-opt + Or-3opt local search of the tour ``t`` in place; returns its cost."""
    nbd = neighbour_distances(D, w, nd, nb)
    q, inq, jr, st = _state(len(t))
    _local_search(D, w, nd, nb, nbd, t, eps, int(use_or), q, inq, jr, st, lk, lkb, _added(lk))
    return tour_cost(D, w, nd, t)


@njit(cache=True, nogil=True)
def _ils(D, w, nd, nb, nbd, t, pos, cost, best, eps, kicks, span, rng, q, inq, jr, st, bt, thr,
         geo, lk, lkb, added, flips):
    """``kicks`` iterations of: a local segment kick (x A B C y -> x C B A y, segments of
    1..span nodes at a random place), local search from its ends, keep if shorter (or longer by
    less than ``thr``) else undo. ``best``/``bt``: the best cost and tour so far (carried over
    from call to call). Returns the current and the best cost."""
    n = len(t)
    if n < 8:
        return cost, best
    done = 0
    tries = 0
    while done < kicks and tries < 4 * kicks + 100 and st[5] < flips:
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
        g = _run_queue(D, w, nd, nb, nbd, t, pos, eps, 1, q, inq, jr, st, lk, lkb, added)
        new = cost + delta - g
        if new < cost + thr or st[3] == 1:
            cost = new
            if cost < best - eps:
                best = cost
                bt[:] = t
        else:
            _undo(t, pos, jr, st, 0)
        if done % 256 == 0 and cost > best + eps:
            # back to the best tour now and then: the walk may not drift far
            t[:] = bt
            for i in range(n):
                pos[t[i]] = i
            cost = best
    st[4] = 0
    if cost > best + eps:
        t[:] = bt
        for i in range(n):
            pos[t[i]] = i
        cost = best
    return cost, best


def ils(D, w, nd, nb, t, eps, kicks, span, rng_state, chunk=None, deadline=None, tau=TAU,
        geo=GEO, lk=LK, lkb=LKB, flips=None):
    """Local search then iterated local search of ``t`` in place; returns the exact cost.

    ``rng_state`` is a 1-element uint64 array (advanced in place). The kicks stop after
    ``kicks``, or once the search has made ``flips`` 2-opt moves (a deterministic work budget;
    ``None``: no limit). With ``deadline`` (a ``time.perf_counter()`` value) the kicks run in
    chunks and also stop once it has passed.
    """
    import time

    nbd = neighbour_distances(D, w, nd, nb)
    q, inq, jr, st = _state(len(t))
    added = _added(lk)
    pos = _local_search(D, w, nd, nb, nbd, t, eps, 1, q, inq, jr, st, lk, lkb, added)
    cost = tour_cost(D, w, nd, t)
    bt = t.copy()
    thr = tau * cost / len(t)
    best = cost
    st[5] = 0
    flips = np.iinfo(np.int64).max if flips is None else int(flips)
    if deadline is None:
        _ils(D, w, nd, nb, nbd, t, pos, cost, best, eps, kicks, span, rng_state, q, inq, jr, st,
             bt, thr, geo, lk, lkb, added, flips)
    else:
        # chunks of whole 256-kick periods (the walk returns to the best tour after each), so
        # a run cut into chunks is the run in one piece
        chunk = 256 * max(1, (chunk or kicks // 64) // 256)
        left = kicks
        while left > 0 and st[5] < flips and time.perf_counter() < deadline:
            k = min(chunk, left)
            cost, best = _ils(D, w, nd, nb, nbd, t, pos, cost, best, eps, k, span, rng_state, q,
                              inq, jr, st, bt, thr, geo, lk, lkb, added, flips)
            left -= k
    return tour_cost(D, w, nd, t)
