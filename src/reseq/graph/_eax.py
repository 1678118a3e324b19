"""Compiled (numba) kernels of the edge assembly crossover (EAX) used by :mod:`reseq.graph.tsp`.

A tour here is an adjacency array ``adj`` (``adj[v]`` = the two tour neighbours of ``v``).
:func:`eax` makes children of tours A and B the way Nagata and Kobayashi's EAX does with its
"single" strategy: the edges of A and B that the two do not share form AB-cycles (closed walks
that alternate an A edge and a B edge, :func:`ab_cycles`); a child is A with the A edges of one
AB-cycle replaced by its B edges, which leaves A's nodes split into sub-tours, merged back into
one tour by the cheapest 2-exchanges between the smallest sub-tour and any other
(:func:`_child`, searched among the candidate neighbours). The best child wins.

A child costs O(k log k) for an AB-cycle of k A edges plus its merges, not O(N): the sub-tours
are found on the k segments of A between the removed edges (a node's segment by binary search
on its position in A), and the working copy is restored row by row after each child.

Distances come from ``D`` except for an optional dummy node ``nd`` whose distances are the
vector ``w`` (the path-to-cycle reduction of :mod:`reseq.graph.tsp`). The merges never remove
an edge of the dummy, so edges that every parent shares with the dummy (fixed path ends) are in
every child. Random choices use the caller's xorshift state, so results depend only on inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._kernels import _rand

__all__ = ["ab_cycles", "adj_cost", "eax", "to_adj", "to_tour"]


@njit(cache=True, nogil=True, inline="always")
def _d(D, w, nd, i, j):
    """Distance between nodes ``i`` and ``j`` (``w`` for the dummy ``nd``)."""
    return w[j] if i == nd else (w[i] if j == nd else D[i, j])


@njit(cache=True, nogil=True)
def to_adj(t):
    """The adjacency array of the cyclic tour ``t``."""
    n = len(t)
    adj = np.empty((n, 2), np.int64)
    for i in range(n):
        adj[t[i], 0] = t[i - 1]
        adj[t[i], 1] = t[(i + 1) % n]
    return adj


@njit(cache=True, nogil=True)
def to_tour(adj, start):
    """The tour of ``adj`` as a node order, from ``start``."""
    n = adj.shape[0]
    t = np.empty(n, np.int64)
    prev = -1
    cur = start
    for i in range(n):
        t[i] = cur
        nx = adj[cur, 0] if adj[cur, 0] != prev else adj[cur, 1]
        prev = cur
        cur = nx
    return t


@njit(cache=True, nogil=True)
def adj_cost(D, w, nd, adj):
    """Length of the tour ``adj``."""
    c = 0.0
    for u in range(adj.shape[0]):
        for k in range(2):
            v = adj[u, k]
            c += _d(D, w, nd, u, v)
    return 0.5 * c


@njit(cache=True, nogil=True)
def _shuffle(a, rng):
    """Shuffle ``a`` in place (Fisher-Yates, the caller's xorshift state)."""
    for i in range(len(a) - 1, 0, -1):
        j = _rand(rng, i + 1)
        a[i], a[j] = a[j], a[i]


@njit(cache=True, nogil=True)
def _take(r, c, u, rng):
    """Remove a random one of ``u``'s remaining edges (``r[u, :c[u]]``) from both ends' lists;
    return its other end."""
    k = _rand(rng, c[u])
    v = r[u, k]
    r[u, k] = r[u, c[u] - 1]
    c[u] -= 1
    for kk in range(c[v]):
        if r[v, kk] == u:
            r[v, kk] = r[v, c[v] - 1]
            c[v] -= 1
            break
    return v


@njit(cache=True, nogil=True)
def ab_cycles(A, B, rng, cyc, cstart):
    """Decompose the edges of A and B that they do not share into AB-cycles; returns their
    number. Cycle ``k`` is ``cyc[cstart[k]:cstart[k + 1]]`` = c0 c1 ... c(2m-1), with the edges
    (c0, c1), (c2, c3), ... of A and (c1, c2), ..., (c(2m-1), c0) of B. ``cyc`` needs 4n + 8
    entries, ``cstart`` 2n + 2. Random walks, alternating A and B edges from random starts,
    cut out a cycle whenever they return to a node at the same parity."""
    n = A.shape[0]
    ra = np.full((n, 2), -1, np.int64)
    rb = np.full((n, 2), -1, np.int64)
    ca = np.zeros(n, np.int64)
    cb = np.zeros(n, np.int64)
    for u in range(n):
        for k in range(2):
            v = A[u, k]
            if v != B[u, 0] and v != B[u, 1]:
                ra[u, ca[u]] = v
                ca[u] += 1
            v = B[u, k]
            if v != A[u, 0] and v != A[u, 1]:
                rb[u, cb[u]] = v
                cb[u] += 1
    # nodes with remaining A edges, visited in a random order
    order = np.arange(n)
    _shuffle(order, rng)
    path = np.empty(4 * n + 4, np.int64)
    p0 = np.full(n, -1, np.int64)  # last index of node in path at even index
    p1 = np.full(n, -1, np.int64)  # ... at odd index
    nc = 0
    cstart[0] = 0
    m = 0
    for oi in range(n):
        s = order[oi]
        if ca[s] == 0:
            continue
        L = 0
        path[0] = s
        p0[s] = 0
        while True:
            cur = path[L]
            if L % 2 == 0:  # next edge is A
                if ca[cur] == 0:
                    break
                v = _take(ra, ca, cur, rng)
            else:
                v = _take(rb, cb, cur, rng)
            L += 1
            path[L] = v
            i = p0[v] if L % 2 == 0 else p1[v]
            if i >= 0:
                # cycle path[i..L-1]; first edge type A iff i even
                if i % 2 == 0:
                    for k2 in range(i, L):
                        cyc[m] = path[k2]
                        m += 1
                else:
                    for k2 in range(i + 1, L):
                        cyc[m] = path[k2]
                        m += 1
                    cyc[m] = path[i]
                    m += 1
                nc += 1
                cstart[nc] = m
                for k2 in range(i + 1, L + 1):
                    x = path[k2]
                    if k2 % 2 == 0:
                        if p0[x] == k2:
                            p0[x] = -1
                    else:
                        if p1[x] == k2:
                            p1[x] = -1
                L = i
                if L == 0 and ca[s] == 0:
                    break
            else:
                if L % 2 == 0:
                    p0[v] = L
                else:
                    p1[v] = L
        p0[s] = -1
    return nc


@njit(cache=True, nogil=True)
def _replace(adj, u, old, new):
    """In ``u``'s slots, replace neighbour ``old`` by ``new``."""
    if adj[u, 0] == old:
        adj[u, 0] = new
    else:
        adj[u, 1] = new


@njit(cache=True, nogil=True)
def _seg_of(cs, k, p):
    """Index of the segment holding tour position ``p`` (0 <= p < n): segment j is positions
    (cs[j], cs[j + 1]], the last one wrapping round to cs[k] = cs[0] + n."""
    lo = 0
    hi = k
    while lo < hi:  # first i with cs[i] >= p
        mid = (lo + hi) >> 1
        if cs[mid] < p:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1 if lo > 0 else k - 1


@njit(cache=True, nogil=True)
def _child(D, w, nd, nb, A, tA, posA, cyc, a, b, C, cs, segc, nxt, first, size, mv, mark):
    """Turn ``C`` (equal to A, whose tour order is ``tA`` and inverse ``posA``) into the child
    of AB-cycle ``cyc[a:b]``: A's edges of the cycle replaced by its B edges, then the sub-tours
    merged, smallest first, by the cheapest 2-exchange with an edge of another sub-tour next to
    a candidate neighbour (next to any node if none fits; never removing a dummy edge).
    Returns (change in length or ``inf``, merges made); ``mv`` records the merges so that
    :func:`_restore` can turn ``C`` back into A; ``mark`` (n + 1 entries, its last the stamp)
    marks the nodes of the sub-tour being merged."""
    n = A.shape[0]
    delta = 0.0
    m = b - a
    k = m // 2
    for i in range(k):
        u = cyc[a + 2 * i]
        v = cyc[a + 2 * i + 1]
        delta -= _d(D, w, nd, u, v)
        _replace(C, u, v, -1)
        _replace(C, v, u, -1)
        pu = posA[u]
        pv = posA[v]
        lo = min(pu, pv)
        hi = max(pu, pv)
        cs[i] = n - 1 if (lo == 0 and hi == n - 1) else lo
    for i in range(1, m, 2):
        u = cyc[a + i]
        v = cyc[a + (i + 1) % m]
        delta += _d(D, w, nd, u, v)
        _replace(C, u, -1, v)
        _replace(C, v, -1, u)
    cs[:k].sort()
    cs[k] = cs[0] + n  # sentinel: segment j is positions (cs[j], cs[j + 1]] (mod n) for every j
    # sub-tours: walk from segment to segment over the B edges
    for j in range(k):
        segc[j] = -1
    nc = 0
    for j0 in range(k):
        if segc[j0] >= 0:
            continue
        first[nc] = j0
        size[nc] = 0
        j = j0
        came = -1  # the node we arrived from
        ent = tA[(cs[j0] + 1) % n]  # enter segment j0 at its head
        last = -1
        while True:
            segc[j] = nc
            if last >= 0:
                nxt[last] = j
            last = j
            head = tA[(cs[j] + 1) % n]
            tail = tA[cs[j + 1] % n]
            L = cs[j + 1] - cs[j]
            size[nc] += L
            if L == 1:
                x = head
                y = C[x, 0] if C[x, 0] != came else C[x, 1]
            else:
                x = tail if ent == head else head
                inside = tA[(posA[x] - 1 + n) % n] if x == tail else tA[(posA[x] + 1) % n]
                y = C[x, 0] if C[x, 0] != inside else C[x, 1]
            jn = _seg_of(cs, k, posA[y])
            if jn == j0:
                break
            came = x
            ent = y
            j = jn
        nxt[last] = -1
        nc += 1
    K = nb.shape[1]
    alive = nc
    nm = 0
    while alive > 1:
        U = -1
        best_sz = n + 1
        for c in range(nc):
            if size[c] > 0 and size[c] < best_sz:
                best_sz = size[c]
                U = c
        bd = np.inf
        bu = bu2 = bv = bv2 = -1
        mark[n] += 1  # stamp U's nodes: membership without a binary search per candidate
        j = first[U]
        while j >= 0:
            for q in range(cs[j + 1] - cs[j]):
                mark[tA[(cs[j] + 1 + q) % n]] = mark[n]
            j = nxt[j]
        for fb in range(2):  # candidates first; every node if none fits
            j = first[U]
            while j >= 0:
                for q in range(cs[j + 1] - cs[j]):
                    u = tA[(cs[j] + 1 + q) % n]
                    if u == nd:
                        continue
                    for e in range(2):
                        u2 = C[u, e]
                        if u2 == nd:
                            continue
                        duu = _d(D, w, nd, u, u2)
                        for kk in range(K if fb == 0 else n):
                            v = nb[u, kk] if fb == 0 else kk
                            if v == nd or v == u:
                                continue
                            if mark[v] == mark[n]:
                                continue
                            dxv = _d(D, w, nd, u, v)
                            for e2 in range(2):
                                v2 = C[v, e2]
                                if v2 == nd:
                                    continue
                                g = dxv + _d(D, w, nd, u2, v2) - duu - _d(D, w, nd, v, v2)
                                if g < bd:
                                    bd = g
                                    bu = u
                                    bu2 = u2
                                    bv = v
                                    bv2 = v2
                j = nxt[j]
            if bu >= 0:
                break
        if bu < 0:
            return np.inf, nm
        _replace(C, bu, bu2, bv)
        _replace(C, bu2, bu, bv2)
        _replace(C, bv, bv2, bu)
        _replace(C, bv2, bv, bu2)
        mv[nm, 0] = bu
        mv[nm, 1] = bu2
        mv[nm, 2] = bv
        mv[nm, 3] = bv2
        nm += 1
        delta += bd
        V = segc[_seg_of(cs, k, posA[bv])]
        j = first[U]
        while True:
            segc[j] = V
            if nxt[j] < 0:
                break
            j = nxt[j]
        nxt[j] = first[V]
        first[V] = first[U]
        size[V] += size[U]
        size[U] = 0
        alive -= 1
    return delta, nm


@njit(cache=True, nogil=True)
def _restore(A, C, cyc, a, b, mv, nm):
    """Undo a child in ``C``: the rows of every node it touched back from A."""
    for i in range(a, b):
        u = cyc[i]
        C[u, 0] = A[u, 0]
        C[u, 1] = A[u, 1]
    for i in range(nm):
        for e in range(4):
            u = mv[i, e]
            C[u, 0] = A[u, 0]
            C[u, 1] = A[u, 1]


@njit(cache=True, nogil=True)
def eax(D, w, nd, nb, A, B, costA, rng, nch, out):
    """The shortest of up to ``nch`` children of A and B (one random AB-cycle each) into
    ``out``; returns its length (``costA`` + change; ``inf`` if A and B are the same tour)."""
    n = A.shape[0]
    cyc = np.empty(4 * n + 8, np.int64)
    cstart = np.empty(2 * n + 2, np.int64)
    nc = ab_cycles(A, B, rng, cyc, cstart)
    if nc == 0:
        return np.inf
    tA = to_tour(A, 0)
    posA = np.empty(n, np.int64)
    for i in range(n):
        posA[tA[i]] = i
    C = A.copy()
    cs = np.empty(n + 1, np.int64)
    segc = np.empty(n, np.int64)
    nxt = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    size = np.empty(n, np.int64)
    mv = np.empty((n, 4), np.int64)
    mark = np.zeros(n + 1, np.int64)  # mark[n]: the current stamp
    idx = np.arange(nc)
    _shuffle(idx, rng)
    best = np.inf
    tried = 0
    for ii in range(nc):
        c = idx[ii]
        a = cstart[c]
        b = cstart[c + 1]
        if b - a < 4:
            continue
        tried += 1
        dl, nm = _child(D, w, nd, nb, A, tA, posA, cyc, a, b, C, cs, segc, nxt, first,
                        size, mv, mark)
        if costA + dl < best:
            best = costA + dl
            out[:, :] = C
        _restore(A, C, cyc, a, b, mv, nm)
        if tried >= nch:
            break
    return best
