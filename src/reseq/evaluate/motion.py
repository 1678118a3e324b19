"""A motion-aware ordering objective (issue 16): measured, and NOT the default.

**Status.** This is an evaluation row (``lpips-alex-motion`` in :mod:`reseq.evaluate.protocol`),
not a product path: chosen on the first development set, it left the held-out second set's
mean tau at K = 3 unchanged (target: half), so ``reseq order`` / ``reseq loop`` keep the
paper's plain LPIPS path. The numbers, and what else was tried (optical-flow turns, gates), are
in ``docs/motion-objective.md``.

**The idea.** The paper's objective is the length of the path under LPIPS. Where a motion comes
back on itself (an arm that swings out and back, a turning crank, a wing beat) a path that plays
a stretch of the clip *backwards* can be shorter than the true order. What should tell the two
apart is the path's second order: at the seams of a stretch played backwards the path turns
round sharply.

The turn at ``b`` on ``a -> b -> c`` is the inner product of the steps ``u = e_b - e_a`` and
``v = e_c - e_b`` of the frames' LPIPS embedding ``e``. LPIPS is a squared Euclidean distance in
that embedding (:func:`reseq.distances.lpips_embedding`), so the law of cosines gives it exactly
from the matrix, with no network pass::

    <u, v> = (D[a, c] - D[a, b] - D[b, c]) / 2,   |u| |v| = sqrt(D[a, b] D[b, c])

(the same number as ``G[b, c] - G[b, b] - G[a, c] + G[a, b]`` with ``G`` the Gram matrix that
double centring gives from ``D``). True neighbours already turn a lot in this embedding, so a
plain turning penalty only re-weights ``D``; the cost is a *hinge* that only charges turns
sharper than the clip's own typical turn,

    turn(a, b, c) = weight * max(0, -<u, v> - kappa |u| |v|)     (zero unless cos(u, v) < -kappa)

and a path costs ``sum of D over its steps + sum of turn over its triples``, all in the units
of ``D``. ``kappa`` adapts to each collection (:func:`motion_objective`): minus the 30 % quantile
of the cosines of the turns along the plain shortest path, so at most about 30 % of that path's
own turns are charged at all.

**The search** starts from :func:`reseq.graph.order`'s path (ends kept) or
:func:`reseq.graph.loop`'s cycle and applies the best 2-opt (reverse a stretch) or Or-opt (move
a stretch of 1-3 frames, either way round) move while one lowers the objective by more than
``margin``. A turn is symmetric (``turn(a, b, c) == turn(c, b, a)``), so reversing a stretch
changes only the steps and turns at its two seams; an Or-opt move changes only the positions it
shifts. :func:`move_delta` is that bookkeeping (checked against :func:`objective_cost` in the
tests) and ``_motion_kernels.search`` its compiled form. No random choice: deterministic.

>>> import numpy as np
>>> x = np.array([[0.0], [1.0], [0.0]])            # out and straight back: cos(u, v) = -1
>>> D = ((x[:, None] - x[None]) ** 2).sum(-1)
>>> obj = MotionObjective(D, kappa=0.25, weight=2.0)
>>> float(turn_cost(obj, 0, 1, 2))                 # 2 * (1 - 0.25 * 1)
1.5
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["MotionObjective", "improve", "motion_objective", "motion_order", "move_delta",
           "objective_cost", "turn_cost"]


@dataclasses.dataclass(frozen=True)
class MotionObjective:
    """The step matrix ``D`` and the turn hinge's ``kappa`` and ``weight``."""

    D: np.ndarray
    kappa: float
    weight: float
    margin: float = 0.0  #: a move must lower the objective by more than this (units of D)


def turn_cost(obj: MotionObjective, a, b, c) -> np.ndarray:
    """``weight * max(0, -<u, v> - kappa |u| |v|)`` for the triples ``a -> b -> c`` (arrays of
    frame indices, broadcast; a triple with a repeated frame costs 0)."""
    D = obj.D
    dab, dbc, dac = D[a, b], D[b, c], D[a, c]
    inner = 0.5 * (dac - dab - dbc)
    t = np.maximum(0.0, -inner - obj.kappa * np.sqrt(dab * dbc))
    return obj.weight * t


def objective_cost(obj: MotionObjective, order, closed: bool = False) -> float:
    """Steps plus weighted turns along ``order`` (brute force, the reference for the search)."""
    o = np.asarray(order, dtype=np.intp)
    if closed:
        ext = np.concatenate([o[-1:], o, o[:1]]) if len(o) > 2 else o
        steps = float(obj.D[o, np.roll(o, -1)].sum())
        turns = float(turn_cost(obj, ext[:-2], ext[1:-1], ext[2:]).sum()) if len(o) > 2 else 0.0
        return steps + turns
    steps = float(obj.D[o[:-1], o[1:]].sum())
    turns = float(turn_cost(obj, o[:-2], o[1:-1], o[2:]).sum()) if len(o) > 2 else 0.0
    return steps + turns


def motion_objective(D: np.ndarray, base_order, closed: bool = False, weight: float = 2.0,
                     quantile: float = 0.3, margin: float = 0.0) -> MotionObjective:
    """The objective for ``D``, its hinge set from the turns along ``base_order`` (the plain
    shortest path): ``kappa = -quantile(cos, q)``, so only turns sharper than all but a share
    ``quantile`` of that path's own turns cost anything. ``margin`` is in median steps."""
    o = np.asarray(base_order, dtype=np.intp)
    if closed and len(o) > 2:
        o = np.concatenate([o[-1:], o, o[:1]])
    a, b, c = o[:-2], o[1:-1], o[2:]
    dab, dbc = D[a, b], D[b, c]
    den = np.sqrt(dab * dbc)
    ok = den > 0
    steps = D[o[:-1], o[1:]]
    med = float(np.median(steps)) if len(steps) else 0.0
    if ok.sum() < 3:
        return MotionObjective(D, 1.0, 0.0, margin * med)
    cos = 0.5 * (D[a, c] - dab - dbc)[ok] / den[ok]
    kappa = float(-np.quantile(cos, quantile))
    return MotionObjective(D, min(max(kappa, 0.0), 1.0), float(weight), margin * med)


def _local(obj: MotionObjective, o: np.ndarray, edges, triples, closed: bool) -> float:
    """Steps ``(o[p], o[p + 1])`` for ``p`` in ``edges`` plus turns centred at ``o[p]`` for ``p``
    in ``triples`` (positions; wrapped when ``closed``, dropped off the ends otherwise)."""
    n = len(o)
    pe = np.unique(np.asarray(edges, dtype=np.intp) % n if closed else edges)
    pt = np.unique(np.asarray(triples, dtype=np.intp) % n if closed else triples)
    if not closed:
        pe = pe[(pe >= 0) & (pe < n - 1)]
        pt = pt[(pt > 0) & (pt < n - 1)]
    e = obj.D[o[pe], o[(pe + 1) % n]].sum()
    t = turn_cost(obj, o[(pt - 1) % n], o[pt], o[(pt + 1) % n]).sum()
    return float(e + t)


def _apply(o: np.ndarray, move: tuple) -> np.ndarray:
    kind = move[0]
    if kind == "2opt":
        i, j = move[1], move[2]
        return np.concatenate([o[:i], o[i:j + 1][::-1], o[j + 1:]])
    _, i, j, k, rev = move  # move o[i..j] to sit after o[k] (k outside i-1..j)
    seg = o[i:j + 1][::-1] if rev else o[i:j + 1]
    rest = np.concatenate([o[:i], o[j + 1:]])
    kk = k if k < i else k - (j - i + 1)
    return np.concatenate([rest[:kk + 1], seg, rest[kk + 1:]])


def move_delta(obj: MotionObjective, o, move: tuple, closed: bool = False) -> float:
    """The change of :func:`objective_cost` made by ``move`` on ``o``, from its seams only.

    ``("2opt", i, j)`` reverses ``o[i..j]``; ``("or", i, j, k, rev)`` moves ``o[i..j]`` after
    ``o[k]`` (reversed when ``rev``). Open paths: ``0 < i <= j < n - 1`` for 2-opt (fixed ends).
    """
    o = np.asarray(o, dtype=np.intp)
    new = _apply(o, move)
    if move[0] == "2opt":
        # the stretch's inner steps and turns are the same set reversed: only its seams change
        i, j = move[1], move[2]
        edges, triples = [i - 1, j], [i - 1, i, j, j + 1]
    else:
        _, i, j, k, _ = move
        lo, hi = min(i, k + 1), max(j, k)  # every position that holds another frame
        edges, triples = range(lo - 1, hi + 1), range(lo - 1, hi + 2)
    return (_local(obj, new, edges, triples, closed)
            - _local(obj, o, edges, triples, closed))


def improve(obj: MotionObjective, order, closed: bool = False, max_passes: int = 200
            ) -> np.ndarray:
    """Local search (2-opt, Or-opt of 1-3 frames both ways round) from ``order`` under ``obj``;
    the ends of an open path stay fixed. Best improvement per pass, deterministic; returns the
    improved order."""
    o = np.asarray(order, dtype=np.intp).copy()
    n = len(o)
    if n < 4 or obj.weight == 0.0:
        return o
    from ._motion_kernels import search  # numba, compiled once and cached on disk

    thresh = max(obj.margin, 1e-12 * max(float(obj.D.max()), 1e-300))
    return search(np.ascontiguousarray(obj.D, dtype=np.float64), o.astype(np.int64),
                  float(obj.kappa), float(obj.weight), thresh, bool(closed), max_passes)


def _moves(n: int, closed: bool):
    lo, hi = (0, n - 1) if closed else (1, n - 2)
    for i in range(lo, hi + 1):
        for j in range(i + 1, hi + 1):
            if closed and i == 0 and j == n - 1:
                continue
            yield ("2opt", i, j)
    for L in (1, 2, 3):
        for i in range(lo, hi - L + 2):
            j = i + L - 1
            for k in range(0, n - 1 if not closed else n):
                if i - 1 <= k <= j:
                    continue
                if not closed and (k >= n - 1):
                    continue
                for rev in (False, True) if L > 1 else (False,):
                    yield ("or", i, j, k, rev)


def motion_order(D: np.ndarray, base_order, closed: bool = False, **params) -> np.ndarray:
    """The order under the motion objective, searched from ``base_order`` (the plain LPIPS
    path or cycle); ``params`` go to :func:`motion_objective` (defaults: the setting chosen on
    the first development set, ``weight=2``, ``quantile=0.3``, ``margin=0``)."""
    return improve(motion_objective(D, base_order, closed, **params), base_order, closed)
