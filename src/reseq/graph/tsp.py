"""Shortest Hamiltonian paths and cycles on a precomputed distance matrix.

``order(D)`` is the shortest Hamiltonian path (paper eq. 5) with free ends, a fixed start, or a
fixed start and end; ``loop(D)`` the shortest Hamiltonian cycle (eq. 6). ``D`` is any symmetric,
non-negative matrix: the triangle inequality is never assumed (LPIPS is a squared distance) and
exact zeros are real edges.

How they are solved
-------------------
* **Exact** for ``N <= EXACT_MAX`` (12) by Held–Karp dynamic programming over subsets,
  vectorised with numpy one subset size at a time.
* **Near-optimal** beyond: every path problem is a cycle problem on ``N + 1`` nodes with a dummy
  node (free ends: the dummy is at distance 0 from every frame; a fixed start ``s``: 0 to ``s``
  and a large ``M`` to the others; fixed ``s`` and ``t``: 0 to both, ``M`` to the others). With
  ``M > 2 max(D)`` no 2-opt or Or-opt move can ever detach the dummy from ``s`` / ``t``, and the
  result is checked (an ``AssertionError`` would be a bug, not bad input).

  Several constructions are improved by a 2-opt + Or-opt local search (candidate neighbour
  lists, don't-look bits) and the best is refined by an iterated local search (random local
  double-bridge kicks, kept when they shorten the tour):

  - greedy edge matching on the ``k`` nearest neighbours (Christofides-style greedy);
  - **out-and-back** tours built from a good free path. On an open (non-looping) clip the
    shortest cycle does not walk the clip and jump back: it goes out through every other frame
    and comes back through the rest. Local search started from a walk-and-jump tour never finds
    that, so the out-and-back tour is always constructed and compared. The same holds for paths
    whose fixed ends lie in the middle of the motion: from ``s`` go out to the near end and back,
    cross to ``t``'s side, go out to the far end and back to ``t``.

* **Time**: ``time_budget`` seconds (default 0.25 s up to N = 200, 2 s at N = 1000, 22 s from
  N = 4100); the local search of the constructions may overrun it by at most the same again.

* **Solvers**: ``method="auto"`` (default) adds fast-tsp (MIT, Rust; Or-opt / Lin–Kernighan
  style local search) as a construction, on distances scaled to its uint16 input (the scale maps
  four times the longest minimum-spanning-tree step to 65534, so typical steps keep thousands of
  levels; longer distances are clipped); our float local search then removes the rounding
  error. ``method="local"`` uses only our own code.

* **Determinism**: every random choice of ours comes from ``numpy.random.default_rng(seed)``
  and the iterated local search runs a fixed number of kicks, so ``method="local"`` (and the
  exact solver, N <= 12) is deterministic unless the time budget runs out. fast-tsp has no seed
  and stops on wall-clock time, so ``method="auto"`` can return a different (equally short or
  very slightly longer) order on another run or machine.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..errors import ReseqError

__all__ = ["EXACT_MAX", "Path", "check_distance_matrix", "loop", "order", "path_cost"]

EXACT_MAX = 12
_K = 10  # candidate neighbours per node


@dataclass(frozen=True)
class Path:
    """An ordering of frames and its cost.

    ``order`` holds frame indices; ``cost`` is the sum of the distances between consecutive
    frames, including the closing step ``order[-1] -> order[0]`` when ``closed``.
    """

    order: np.ndarray
    cost: float
    closed: bool
    _steps: np.ndarray = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def steps(self) -> np.ndarray:
        """Distances between consecutive frames (``N - 1`` of them, ``N`` when closed)."""
        return self._steps

    @property
    def max_step(self) -> float:
        """The largest step (0.0 for a single frame)."""
        return float(self._steps.max()) if len(self._steps) else 0.0

    def __len__(self) -> int:
        return len(self.order)


def check_distance_matrix(D, min_n: int = 1, name: str = "D") -> np.ndarray:
    """Validate a distance matrix and return it as a symmetric float64 array.

    Raises :class:`ReseqError` unless ``D`` is square, finite, non-negative, symmetric (within a
    relative tolerance of 1e-6; the two triangles are averaged) and has at least ``min_n`` rows.
    The diagonal is ignored (set to 0).
    """
    try:
        A = np.array(D, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ReseqError(f"{name} is not a numeric matrix: {exc}") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ReseqError(f"{name} must be a square N x N matrix, got shape {A.shape}")
    n = A.shape[0]
    if n < min_n:
        raise ReseqError(f"{name} needs at least {min_n} frames, got {n}")
    if not np.isfinite(A).all():
        raise ReseqError(f"{name} contains NaN or infinite distances")
    np.fill_diagonal(A, 0.0)
    scale = max(float(np.abs(A).max()) if n else 0.0, 1e-300)
    if A.min() < -1e-9 * scale:
        raise ReseqError(f"{name} contains negative distances (min {A.min():.3g})")
    asym = float(np.abs(A - A.T).max()) if n else 0.0
    if asym > 1e-6 * scale:
        raise ReseqError(f"{name} is not symmetric (largest |D - D.T| is {asym:.3g})")
    A = np.maximum((A + A.T) * 0.5, 0.0)
    return A


def path_cost(D: np.ndarray, order, closed: bool = False) -> float:
    """Sum of ``D`` along ``order`` (plus the closing step when ``closed``)."""
    o = np.asarray(order, dtype=np.intp)
    c = float(D[o[:-1], o[1:]].sum())
    if closed and len(o) > 1:
        c += float(D[o[-1], o[0]])
    return c


def _make_path(D: np.ndarray, order, closed: bool) -> Path:
    o = np.asarray(order, dtype=np.intp).copy()
    steps = D[o[:-1], o[1:]]
    if closed and len(o) > 1:
        steps = np.append(steps, D[o[-1], o[0]])
    o.setflags(write=False)
    steps.setflags(write=False)
    return Path(order=o, cost=float(steps.sum()), closed=closed, _steps=steps)


def _check_index(v, n: int, what: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ReseqError(f"{what} must be a frame index (int), got {v!r}")
    v = int(v)
    if not 0 <= v < n:
        raise ReseqError(f"{what}={v} is out of range for {n} frames (0..{n - 1})")
    return v


def _default_budget(n: int) -> float:
    """Seconds by default: 0.25 s at N <= 200, 2 s at N = 1000, 22 s from N = 4100."""
    return float(min(22.0, max(0.25, 2.0 * (n / 1000.0) ** 1.7)))


# ---------------------------------------------------------------------------------------------
# exact: Held–Karp
# ---------------------------------------------------------------------------------------------

def _held_karp(D: np.ndarray, starts, tail: np.ndarray) -> tuple[list[int], float]:
    """Cheapest path from one of ``starts`` through all nodes, plus ``tail[last]``.

    ``dp[mask, j]`` is the cheapest path that starts in ``starts``, visits exactly ``mask`` and
    ends at ``j``; it is filled one popcount layer at a time, vectorised over masks and ``k``.
    """
    n = len(D)
    size = 1 << n
    dp = np.full((size, n), np.inf)
    parent = np.full((size, n), -1, dtype=np.int8)
    for s in starts:
        dp[1 << s, s] = 0.0
    masks = np.arange(size, dtype=np.int64)
    pop = np.zeros(size, dtype=np.int64)
    for b in range(n):
        pop += (masks >> b) & 1
    layers = [masks[pop == p] for p in range(n + 1)]
    for p in range(1, n):
        M = layers[p]
        V = dp[M]  # (m, n): cost of paths over mask ending at k
        for j in range(n):
            sel = ((M >> j) & 1) == 0
            Mj = M[sel]
            W = V[sel] + D[:, j][None, :]
            k = np.argmin(W, axis=1)
            new = Mj | (1 << j)
            dp[new, j] = W[np.arange(len(k)), k]
            parent[new, j] = k
    full = size - 1
    total = dp[full] + tail
    j = int(np.argmin(total))
    best = float(total[j])
    if not np.isfinite(best):
        raise AssertionError("Held-Karp found no feasible path")
    out = [j]
    mask = full
    while True:
        k = int(parent[mask, j])
        if k < 0:
            break
        mask ^= 1 << j
        j = k
        out.append(j)
    out.reverse()
    return out, best


def _exact_path(D: np.ndarray, start: int | None, end: int | None) -> list[int]:
    n = len(D)
    if start is None and end is not None:
        return _exact_path(D, end, None)[::-1]
    starts = range(n) if start is None else [start]
    tail = np.zeros(n)
    if end is not None:
        tail = np.full(n, np.inf)
        tail[end] = 0.0
    return _held_karp(D, starts, tail)[0]


def _exact_cycle(D: np.ndarray) -> list[int]:
    return _held_karp(D, [0], D[:, 0].copy())[0]


# ---------------------------------------------------------------------------------------------
# local search on a cycle (2-opt + Or-opt, neighbour lists, don't-look bits) and ILS
# ---------------------------------------------------------------------------------------------

def _neighbours(E: np.ndarray, k: int) -> np.ndarray:
    n = len(E)
    k = min(k, n - 1)
    W = E + np.diag(np.full(n, np.inf))
    nb = np.argpartition(W, k - 1, axis=1)[:, :k]
    d = np.take_along_axis(W, nb, axis=1)
    # sort each row by distance, ties by index (determinism)
    idx = np.lexsort((nb, d), axis=1)
    return np.take_along_axis(nb, idx, axis=1)


class _Tour:
    """A cycle as an array ``t`` of nodes and its inverse ``pos``."""

    __slots__ = ("E", "cost", "n", "nb", "pos", "t")

    def __init__(self, E: np.ndarray, nb: np.ndarray, t) -> None:
        self.E = E
        self.nb = nb
        self.t = np.array(t, dtype=np.intp)
        self.n = len(self.t)
        self.pos = np.empty(self.n, dtype=np.intp)
        self.pos[self.t] = np.arange(self.n)
        self.cost = path_cost(E, self.t, closed=True)

    def copy_state(self):
        return self.t.copy(), self.pos.copy(), self.cost

    def set_state(self, state) -> None:
        t, pos, cost = state
        self.t, self.pos, self.cost = t, pos, cost

    def recompute(self) -> None:
        self.pos[self.t] = np.arange(self.n)
        self.cost = path_cost(self.E, self.t, closed=True)

    # -- moves ---------------------------------------------------------------------------
    def _reverse(self, i: int, j: int) -> None:
        """Reverse t[i..j] (inclusive, i <= j)."""
        seg = self.t[i:j + 1][::-1].copy()
        self.t[i:j + 1] = seg
        self.pos[seg] = np.arange(i, j + 1)

    def two_opt(self, i: int, j: int) -> None:
        """Replace edges (t[i], t[i+1]) and (t[j], t[j+1]) by (t[i], t[j]), (t[i+1], t[j+1])."""
        n = self.n
        if i > j:
            i, j = j, i
        # reverse the shorter side
        inner = j - i
        if inner <= n - inner:
            self._reverse(i + 1, j)
        else:
            # reverse t[j+1 .. i] cyclically: roll so that j+1 is at 0
            self.t = np.roll(self.t, -(j + 1))
            m = n - (j + 1) + i  # index of old t[i] after roll
            self.t[: m + 1] = self.t[: m + 1][::-1].copy()
            self.pos[self.t] = np.arange(n)

    def or_move(self, i0: int, L: int, c: int, after: bool, a_first: bool) -> None:
        """Move segment t[i0 .. i0+L-1] next to node ``c``.

        ``after``: insert between c and succ(c) (else between pred(c) and c). ``a_first``: the
        segment keeps its orientation (else it is reversed).
        """
        n = self.n
        r = np.roll(self.t, -i0)
        seg = r[:L]
        rest = r[L:]
        if not a_first:
            seg = seg[::-1]
        k = (int(self.pos[c]) - i0 - L) % n
        cut = k + 1 if after else k
        self.t = np.concatenate((rest[:cut], seg, rest[cut:]))
        self.pos[self.t] = np.arange(n)

    # -- improvement -----------------------------------------------------------------------
    def improve_node(self, a: int) -> tuple[float, list[int]] | None:
        """Apply the best improving 2-opt / Or-opt move involving node ``a``, if any."""
        E, t, pos, n = self.E, self.t, self.pos, self.n
        C = self.nb[a]
        pa = int(pos[a])
        pc = pos[C]
        sc = t[(pc + 1) % n]
        pcn = t[pc - 1]
        best_gain = 1e-12 * (1.0 + abs(self.cost) / n)
        best = None
        # 2-opt, a -> succ(a)
        b = int(t[(pa + 1) % n])
        g = E[a, b] + E[C, sc] - E[a, C] - E[b, sc]
        k = int(np.argmax(g))
        if g[k] > best_gain:
            best_gain = float(g[k])
            best = ("2", pa, int(pc[k]))
        # 2-opt, pred(a) -> a
        b2 = int(t[pa - 1])
        g = E[b2, a] + E[pcn, C] - E[a, C] - E[b2, pcn]
        k = int(np.argmax(g))
        if g[k] > best_gain:
            best_gain = float(g[k])
            best = ("2", (pa - 1) % n, (int(pc[k]) - 1) % n)
        # Or-opt: segments of length 1..3 with a at one end
        if n >= 8:
            pcs = pc
            for L in (1, 2, 3):
                for a_is_first in (True, False):
                    if L == 1 and not a_is_first:
                        continue
                    i0 = pa if a_is_first else (pa - L + 1) % n
                    s1 = int(t[i0])
                    s2 = int(t[(i0 + L - 1) % n])
                    p = int(t[i0 - 1])
                    nx = int(t[(i0 + L) % n])
                    rem = E[p, s1] + E[s2, nx] - E[p, nx]
                    if rem <= best_gain:
                        continue
                    o = s2 if a_is_first else s1
                    offc = (pcs - i0) % n
                    ok = offc >= L
                    # after c: c, a ... o, succ(c)
                    offe = (offc + 1) % n
                    g1 = rem - (E[C, a] + E[o, sc] - E[C, sc])
                    g1 = np.where(ok & (offe >= L), g1, -np.inf)
                    # before c: pred(c), o ... a, c
                    offe2 = (offc - 1) % n
                    g2 = rem - (E[pcn, o] + E[a, C] - E[pcn, C])
                    g2 = np.where(ok & (offe2 >= L), g2, -np.inf)
                    k1 = int(np.argmax(g1))
                    if g1[k1] > best_gain:
                        best_gain = float(g1[k1])
                        # segment orientation s1..s2 kept iff a is s1 (c, s1 .. s2, e)
                        best = ("o", i0, L, int(C[k1]), True, a_is_first)
                    k2 = int(np.argmax(g2))
                    if g2[k2] > best_gain:
                        best_gain = float(g2[k2])
                        # (e, o .. a, c): kept orientation iff a is s2
                        best = ("o", i0, L, int(C[k2]), False, not a_is_first)
        if best is None:
            return None
        if best[0] == "2":
            _, i, j = best
            touched = [int(t[i]), int(t[(i + 1) % n]), int(t[j]), int(t[(j + 1) % n])]
            self.two_opt(i, j)
        else:
            _, i0, L, c, after, keep = best
            e = int(t[(pos[c] + 1) % n]) if after else int(t[pos[c] - 1])
            touched = [int(t[i0 - 1]), int(t[(i0 + L) % n]), int(t[i0]),
                       int(t[(i0 + L - 1) % n]), c, e]
            self.or_move(i0, L, c, after, keep)
        self.cost -= best_gain
        return best_gain, touched

    def local_search(self, queue=None, deadline: float = np.inf) -> None:
        n = self.n
        if queue is None:
            queue = range(n)
        active = np.zeros(n, dtype=bool)
        dq = deque()
        for v in queue:
            if not active[v]:
                active[v] = True
                dq.append(int(v))
        steps = 0
        while dq:
            steps += 1
            if steps % 64 == 0 and time.perf_counter() > deadline:
                break
            a = dq.popleft()
            active[a] = False
            res = self.improve_node(a)
            if res is None:
                continue
            for v in res[1]:
                if not active[v]:
                    active[v] = True
                    dq.append(v)
            if not active[a]:
                active[a] = True
                dq.append(a)

    def kick(self, rng: np.random.Generator, span: int) -> list[int]:
        """Local double bridge: swap two adjacent short segments at a random place."""
        n = self.n
        i = int(rng.integers(n))
        l1 = int(rng.integers(1, span + 1))
        l2 = int(rng.integers(1, span + 1))
        if l1 + l2 + 2 > n:
            l1 = l2 = max(1, (n - 2) // 2)
        r = np.roll(self.t, -i)
        A = r[1:1 + l1]
        B = r[1 + l1:1 + l1 + l2]
        nxt = r[(1 + l1 + l2) % n]
        E = self.E
        x = r[0]
        delta = (E[x, B[0]] + E[B[-1], A[0]] + E[A[-1], nxt]
                 - E[x, A[0]] - E[A[-1], B[0]] - E[B[-1], nxt])
        touched = [int(x), int(A[0]), int(A[-1]), int(B[0]), int(B[-1]), int(nxt)]
        self.t = np.concatenate(([x], B, A, r[1 + l1 + l2:]))
        self.pos[self.t] = np.arange(n)
        self.cost += float(delta)
        return touched


def _ils(tour: _Tour, rng: np.random.Generator, kicks: int, deadline: float) -> None:
    """Iterated local search: local double-bridge kicks, kept when not worse."""
    n = tour.n
    if n < 8:
        return
    span = max(1, min(50, n // 10))
    tour.local_search(deadline=deadline)
    best = tour.copy_state()
    for it in range(kicks):
        if it % 16 == 0 and time.perf_counter() > deadline:
            break
        touched = tour.kick(rng, span)
        tour.local_search(touched, deadline=deadline)
        if tour.cost < best[2] - 1e-12 * abs(best[2]):
            best = tour.copy_state()
        else:
            tour.set_state((best[0].copy(), best[1].copy(), best[2]))
    tour.set_state(best)
    tour.recompute()


# ---------------------------------------------------------------------------------------------
# constructions
# ---------------------------------------------------------------------------------------------

def _greedy_fragments(D: np.ndarray, nb: np.ndarray, closed: bool) -> list[int]:
    """Greedy edge matching on candidate edges, fragments joined greedily (path or cycle)."""
    n = len(D)
    i = np.repeat(np.arange(n), nb.shape[1])
    j = nb.ravel()
    keep = i < j
    both = np.concatenate((np.stack((i[keep], j[keep])), np.stack((j[~keep], i[~keep]))), axis=1)
    both = np.unique(both, axis=1)
    w = D[both[0], both[1]]
    order_ = np.lexsort((both[1], both[0], w))
    deg = [0] * n
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    adj: list[list[int]] = [[] for _ in range(n)]
    edges = 0
    for e in order_:
        u, v = int(both[0, e]), int(both[1, e])
        if deg[u] >= 2 or deg[v] >= 2:
            continue
        ru, rv = find(u), find(v)
        if ru == rv:
            continue
        parent[ru] = rv
        deg[u] += 1
        deg[v] += 1
        adj[u].append(v)
        adj[v].append(u)
        edges += 1
        if edges == n - 1:
            break
    # fragments as paths
    seen = [False] * n
    frags = []
    for s in range(n):
        if seen[s] or deg[s] == 2:
            continue
        path = [s]
        seen[s] = True
        prev, cur = -1, s
        while True:
            nxt = [x for x in adj[cur] if x != prev]
            if not nxt or seen[nxt[0]]:
                break
            prev, cur = cur, nxt[0]
            seen[cur] = True
            path.append(cur)
        frags.append(path)
    # join fragments: repeatedly attach the nearest fragment end to the growing path's tail
    frags.sort(key=len, reverse=True)
    cur = frags.pop(0)
    while frags:
        ends = np.array([[f[0], f[-1]] for f in frags])
        tail, head = cur[-1], cur[0]
        dt = D[tail, ends]  # (f, 2)
        dh = D[head, ends]
        if dt.min() <= dh.min():
            f, side = np.unravel_index(int(np.argmin(dt)), dt.shape)
            frag = frags.pop(int(f))
            cur = cur + (frag if side == 0 else frag[::-1])
        else:
            f, side = np.unravel_index(int(np.argmin(dh)), dh.shape)
            frag = frags.pop(int(f))
            cur = (frag[::-1] if side == 0 else frag) + cur
    return cur


def _out_and_back(p: list[int] | np.ndarray, a: int, b: int, parity: int = 0) -> list[int]:
    """A path from p[a] to p[b] (a < b) over all of ``p`` that never jumps far.

    From p[a] it goes out towards p[0] through every other frame and back through the rest, walks
    p[a+1 .. b-1], goes out towards p[-1] the same way and comes back to p[b]. With a = b = 0
    (and then closing it) this is the out-and-back cycle.
    """
    p = list(p)
    left = p[:a][::-1]  # frames beyond the start, nearest first
    right = p[b + 1:]   # frames beyond the end, nearest first
    out: list[int] = [p[a]]
    if left:
        out += left[parity::2] + left[1 - parity::2][::-1]
    out += p[a + 1:b]
    if right:
        out += right[parity::2] + right[1 - parity::2][::-1]
    out.append(p[b])
    return out


def _fix_ends(p: list[int], s: int | None, t: int | None) -> list[int]:
    """Turn a Hamiltonian path into one starting at s (and ending at t) by 2-opt reversals."""
    p = list(p)
    if s is not None and p[0] != s:
        k = p.index(s)
        if k == len(p) - 1:
            p = p[::-1]
        else:
            p = p[:k + 1][::-1] + p[k + 1:]
    if t is not None and p[-1] != t:
        m = p.index(t)
        p = p[:m] + p[m:][::-1]
    return p


# ---------------------------------------------------------------------------------------------
# drivers
# ---------------------------------------------------------------------------------------------

def _extended(D: np.ndarray, start: int | None, end: int | None) -> np.ndarray:
    """The (N+1) x (N+1) cycle instance whose dummy node N encodes the path's ends."""
    n = len(D)
    E = np.zeros((n + 1, n + 1))
    E[:n, :n] = D
    if start is not None or end is not None:
        M = 3.0 * float(D.max()) + 1.0
        E[n, :n] = M
        for v in (start, end):
            if v is not None:
                E[n, v] = 0.0
        E[:n, n] = E[n, :n]
    E[n, n] = 0.0
    return E


def _path_from_cycle(t: np.ndarray, dummy: int) -> list[int]:
    k = int(np.nonzero(t == dummy)[0][0])
    return [int(x) for x in np.concatenate((t[k + 1:], t[:k]))]


def _quantize(E: np.ndarray, n_real: int) -> np.ndarray:
    """uint16 copy of ``E`` for fast-tsp: real distances scaled so that a clip value maps to
    65534 (larger ones clipped), dummy-row entries above every real distance mapped to 65535.

    The clip is four times the longest minimum-spanning-tree edge (no good tour needs a step much
    longer than the longest MST edge), so typical steps keep as many levels as possible.
    """
    from .mst import minimum_spanning_tree

    D = E[:n_real, :n_real]
    dmax = float(D.max())
    mst_max = max((w for _, _, w in minimum_spanning_tree(D)), default=0.0)
    clip = min(dmax, 4.0 * mst_max) if mst_max > 0 else dmax
    scale = 65534.0 / clip if clip > 0 else 0.0
    Q = np.minimum(np.rint(E * scale), 65534.0)
    if len(E) > n_real:
        big = E[n_real] > dmax
        Q[n_real, big] = 65535.0
        Q[big, n_real] = 65535.0
    np.fill_diagonal(Q, 0.0)
    return Q.astype(np.uint16)


def _fast_tsp(E: np.ndarray, n_real: int, seconds: float) -> list[int] | None:
    """A tour of the cycle instance ``E`` from fast-tsp (None if it is not installed)."""
    try:
        import fast_tsp
    except ImportError:  # pragma: no cover - fast-tsp is a dependency
        return None
    Q = _quantize(E, n_real)
    return [int(v) for v in fast_tsp.find_tour(Q, max(float(seconds), 0.02), 1, "auto", False)]


def _path_neighbours(E: np.ndarray, nbD: np.ndarray) -> np.ndarray:
    """Candidate lists of the dummy instance: the frames' own plus the dummy."""
    n = len(E) - 1
    nbE = np.empty((n + 1, nbD.shape[1] + 1), dtype=np.intp)
    nbE[:n, :-1] = nbD
    nbE[:n, -1] = n  # every frame may connect to the dummy
    row = E[n, :n]
    nbE[n] = np.lexsort((np.arange(n), row))[: nbE.shape[1]]
    return nbE


def _best_tour(E, nb, cands, hard) -> _Tour:
    """Local-search every candidate (cheapest first, while time allows); keep the best."""
    best = None
    cands = sorted(cands, key=lambda c: path_cost(E, c, closed=True))
    for c in cands:
        tour = _Tour(E, nb, c)
        tour.local_search(deadline=hard)
        if best is None or tour.cost < best.cost - 1e-12 * abs(best.cost):
            best = tour
    assert best is not None
    return best


def _solve_path(D, start, end, rng, kicks, deadline, use_fast, nbD=None,
                hard=np.inf) -> list[int]:
    """Near-optimal Hamiltonian path (see module doc)."""
    n = len(D)
    E = _extended(D, start, end)
    if nbD is None:
        nbD = _neighbours(D, _K)
    nbE = _path_neighbours(E, nbD)
    cands = []
    if use_fast:
        remaining = deadline - time.perf_counter()
        share = 0.8 if start is None and end is None else 0.55
        t = _fast_tsp(E, n, share * remaining)
        if t is not None:
            cands.append(_fix_ends(_path_from_cycle(np.asarray(t), n), start, end))
    if start is None and end is None:
        if not cands:
            cands.append(_greedy_fragments(D, nbD, closed=False))
    else:
        greedy = _greedy_fragments(D, nbD, closed=False)
        Ef = _extended(D, None, None)
        free = _Tour(Ef, _path_neighbours(Ef, nbD), [n, *greedy])
        free.local_search(deadline=hard)
        fp = _path_from_cycle(free.t, n)
        if not cands:
            cands.append(_fix_ends(fp, start, end))
        if start is not None and end is not None:
            a, b = fp.index(start), fp.index(end)
            q = fp if a < b else fp[::-1]
            a, b = q.index(start), q.index(end)
            for parity in (0, 1):
                cands.append(_out_and_back(q, a, b, parity))
        else:
            v = start if start is not None else end
            a = fp.index(v)
            # go out-and-back over the shorter side, then walk the longer one
            q = fp if a <= len(fp) - 1 - a else fp[::-1]
            a = q.index(v)
            for parity in (0, 1):
                p = _out_and_back(q, a, len(q) - 1, parity)
                cands.append(p if start is not None else p[::-1])
    best = _best_tour(E, nbE, [[n, *_fix_ends(c, start, end)] for c in cands], hard)
    _ils(best, rng, kicks, deadline)
    p = _path_from_cycle(best.t, n)
    if (start is not None and p[0] != start) or (start is None and end is not None
                                                 and p[-1] != end):
        p = p[::-1]
    if start is not None:
        assert p[0] == start, "bug: start not honoured"
    if end is not None:
        assert p[-1] == end, "bug: end not honoured"
    return p


def _zigzags(fp: list[int]) -> list[list[int]]:
    """Out-and-back cycles over a path: out through every other frame, back through the rest."""
    return [fp[0::2] + fp[1::2][::-1], [fp[0], *fp[1::2], *fp[2::2][::-1]]]


def _solve_cycle(D, rng, kicks, deadline, use_fast, hard=np.inf) -> list[int]:
    n = len(D)
    nb = _neighbours(D, _K)
    cands = []
    t = None
    if use_fast:
        t = _fast_tsp(D, n, 0.7 * (deadline - time.perf_counter()))
    if t is not None:
        cands.append(t)
        # the walk-and-jump trap: cut the tour at its longest step to get a free path
        steps = D[t, np.roll(t, -1)]
        k = int(np.argmax(steps))
        fp = [int(v) for v in np.roll(t, -(k + 1))]
        Ef = _extended(D, None, None)
        free = _Tour(Ef, _path_neighbours(Ef, nb), [n, *fp])
        free.local_search(deadline=hard)
        fp = _path_from_cycle(free.t, n)
    else:
        cands.append(_greedy_fragments(D, nb, closed=True))
        fp = _solve_path(D, None, None, rng, kicks // 4, deadline, False, nbD=nb, hard=hard)
        cands.append(fp)
    # out-and-back tours over the path (the open-clip trap, see the module doc)
    cands += _zigzags(fp)
    best = _best_tour(D, nb, cands, hard)
    _ils(best, rng, kicks, deadline)
    return [int(x) for x in best.t]


def _kicks(n: int, method: str) -> int:
    return int(min(20000, 8 * n))


def _method(method: str) -> bool:
    if method not in ("auto", "local"):
        raise ReseqError(f"method must be 'auto' or 'local', got {method!r}")
    return method == "auto"


def order(D, start: int | None = None, end: int | None = None, seed: int = 0,
          time_budget: float | None = None, method: str = "auto") -> Path:
    """The shortest Hamiltonian path through all frames (paper eq. 5).

    ``start`` / ``end`` fix the first / last frame (indices); ``None`` leaves that end free (with
    both free, ``order[0] < order[-1]``). Exact for N <= 12, near-optimal beyond; ``time_budget``
    in seconds (default grows with N); ``method`` "auto" or "local" and determinism: see the
    module doc.

    >>> import numpy as np
    >>> x = np.array([0.0, 3.0, 1.0, 2.0])
    >>> D = (x[:, None] - x[None, :]) ** 2
    >>> p = order(D, start=0)
    >>> p.order.tolist(), p.cost
    ([0, 2, 3, 1], 3.0)
    """
    A = check_distance_matrix(D, 2)
    n = len(A)
    start = _check_index(start, n, "start")
    end = _check_index(end, n, "end")
    if start is not None and start == end:
        raise ReseqError("start and end must be different frames for a path (use loop for a cycle)")
    if n <= EXACT_MAX:
        p = _exact_path(A, start, end)
    else:
        budget = _default_budget(n) if time_budget is None else float(time_budget)
        deadline = time.perf_counter() + budget
        rng = np.random.default_rng(seed)
        p = _solve_path(A, start, end, rng, _kicks(n, method), deadline, _method(method),
                        hard=deadline + budget)
    if start is None and end is None and p[0] > p[-1]:
        p = p[::-1]  # canonical direction for free ends
    if start is not None:
        assert p[0] == start, "bug: start not honoured"
    if end is not None:
        assert p[-1] == end, "bug: end not honoured"
    assert sorted(p) == list(range(n)), "bug: not a permutation"
    return _make_path(A, p, closed=False)


def loop(D, seed: int = 0, time_budget: float | None = None, method: str = "auto") -> Path:
    """The shortest Hamiltonian cycle through all frames (paper eq. 6).

    ``order`` starts at frame 0 and ``order[1] < order[-1]`` (the direction is arbitrary);
    ``cost`` includes the closing step. Exact for N <= 12, near-optimal beyond.

    >>> import numpy as np
    >>> x = np.arange(6.0)
    >>> D = (x[:, None] - x[None, :]) ** 2
    >>> loop(D).order.tolist()   # out through the even frames, back through the odd ones
    [0, 1, 3, 5, 4, 2]
    >>> print(f"{loop(D).cost:g} {loop(D).max_step:g}")
    18 4
    """
    A = check_distance_matrix(D, 3)
    n = len(A)
    if n <= EXACT_MAX:
        c = _exact_cycle(A)
    else:
        budget = _default_budget(n) if time_budget is None else float(time_budget)
        deadline = time.perf_counter() + budget
        rng = np.random.default_rng(seed)
        c = _solve_cycle(A, rng, _kicks(n, method), deadline, _method(method),
                         hard=deadline + budget)
    assert sorted(c) == list(range(n)), "bug: not a permutation"
    k = c.index(0)
    c = c[k:] + c[:k]
    if c[1] > c[-1]:
        c = [c[0], *c[1:][::-1]]
    return _make_path(A, c, closed=True)
