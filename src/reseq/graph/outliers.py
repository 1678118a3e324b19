"""Outlier frames: far from their nearest neighbours on the perceptual manifold (paper §4.3).

Each frame gets the score ``X_i``, its mean distance to its ``k`` nearest other frames (eq. 3).
A 4-parameter generalized gamma distribution (eq. 4; ``scipy.stats.gengamma`` with shapes
``a`` = α and ``c`` = γ, ``loc`` = μ, ``scale`` = β) is fitted to the scores by maximum likelihood
and its ``quantile`` (0.9) is the threshold ``T``; frames with ``X_i > T`` are outliers.

The fit is made robust by working on standardised scores, starting from several deterministic
initial guesses (location just below the smallest score) and keeping the converged fit with the
highest likelihood; a fit that is not finite raises :class:`~reseq.errors.ReseqError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ReseqError
from .tsp import _is_sparse, check_distance_matrix

__all__ = ["Outliers", "knn_scores", "outliers"]


@dataclass(frozen=True)
class Outliers:
    """Result of :func:`outliers`.

    ``scores``: X_i per frame; ``params``: fitted ``(a, c, loc, scale)`` of
    ``scipy.stats.gengamma``; ``threshold``: T; ``mask``: X_i > T; ``indices``: where ``mask``.
    """

    scores: np.ndarray
    params: tuple[float, float, float, float]
    threshold: float
    mask: np.ndarray
    indices: np.ndarray
    k: int
    quantile: float

    def pdf(self, x) -> np.ndarray:
        """The fitted density at ``x`` (for histograms)."""
        from scipy.stats import gengamma

        return gengamma.pdf(np.asarray(x, dtype=float), *self.params)


def knn_scores(D, k: int = 5) -> np.ndarray:
    """Mean distance of every frame to its ``k`` nearest other frames (paper eq. 3)."""
    if _is_sparse(D):  # the candidate graph lists them (reseq.graph.sparse)
        return D.knn_scores(k)
    A = check_distance_matrix(D, 2)
    n = len(A)
    if not 1 <= k <= n - 1:
        raise ReseqError(f"k must be between 1 and N - 1 = {n - 1}, got {k}")
    W = A.copy()
    np.fill_diagonal(W, np.inf)
    part = np.partition(W, k - 1, axis=1)[:, :k]
    return part.mean(axis=1)


def _fit_gengamma(x: np.ndarray, seed: int) -> tuple[float, float, float, float]:
    """MLE of (a, c, loc, scale) on standardised scores, loc kept below the smallest score.

    Parametrised as (log a, log c, log(min z - loc), log scale) with bounds that keep the fit
    away from the degenerate spike at loc = min; L-BFGS-B from several starting points (a
    deterministic grid plus ``seed``-drawn jitter); the best converged likelihood wins (a
    non-converged fit only if none converged; no finite fit at all raises ReseqError).
    """
    from scipy import optimize
    from scipy.special import gammaln

    mu, sd = float(x.mean()), float(x.std())
    z = (x - mu) / sd
    zmin = float(z.min())

    def unpack(th):
        return np.exp(th[0]), np.exp(th[1]), zmin - np.exp(th[2]), np.exp(th[3])

    def nll(th):
        # gengamma log-density: log c + (a c - 1) log y - y^c - log Gamma(a) - log scale
        a, c, loc, scale = unpack(th)
        with np.errstate(all="ignore"):
            ly = np.log((z - loc) / scale)
            v = -float(len(z) * (np.log(c) - gammaln(a) - th[3])
                       + np.sum((a * c - 1.0) * ly - np.exp(c * ly)))
        return v if np.isfinite(v) else 1e300

    bounds = [(-4.0, 4.0), (-3.0, 3.0), (np.log(1e-2), np.log(20.0)), (-8.0, 6.0)]
    rng = np.random.default_rng(seed)
    starts = []
    for a0, c0 in ((1.0, 1.0), (3.0, 1.0), (1.0, 2.0)):
        for gap in (0.3, 1.5):
            scale0 = max(float((z - (zmin - gap)).mean()) / a0, 1e-3)
            starts.append([np.log(a0), np.log(c0), np.log(gap), np.log(scale0)])
    starts.append(list(np.asarray(starts[0]) + rng.normal(scale=0.3, size=4)))
    fits = []  # (not converged, nll, params): converged fits first, then the likeliest
    for th0 in starts:
        th0 = np.clip(th0, [b[0] for b in bounds], [b[1] for b in bounds])
        res = optimize.minimize(nll, th0, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": 500})
        if np.isfinite(res.fun) and res.fun < 1e299:
            fits.append((not res.success, round(float(res.fun), 9), list(res.x)))
    best = min(fits)[2] if fits else None
    if best is None:
        raise ReseqError("could not fit a generalized gamma distribution to the outlier scores")
    a, c, loc, scale = (float(v) for v in unpack(best))
    return a, c, loc * sd + mu, scale * sd


def outliers(D, k: int = 5, quantile: float = 0.9, seed: int = 0) -> Outliers:
    """Flag frames whose score X_i exceeds the fitted generalized gamma ``quantile`` (§4.3).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(size=(60, 2)), [[9.0, 9.0]]])
    >>> D = ((x[:, None] - x[None]) ** 2).sum(-1)
    >>> res = outliers(D)
    >>> 60 in res.indices.tolist()
    True
    """
    A = D if _is_sparse(D) else check_distance_matrix(D, 1)
    n = len(A)
    if not 0.0 < quantile < 1.0:
        raise ReseqError(f"quantile must be between 0 and 1, got {quantile}")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ReseqError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if n <= k + 1:
        raise ReseqError(f"outlier detection with k={k} needs more than {k + 1} frames, got {n}")
    x = knn_scores(A, k)
    top = float(np.abs(x).max())
    # scores far from 1 (1e200, 1e-300) are fitted in units of the largest, where their
    # squares neither overflow nor underflow; in-range scores are fitted as they are
    unit = top if top > 0 and not 1e-100 <= top <= 1e100 else 1.0
    xs = x / unit
    if float(xs.std()) <= 1e-12 * max(float(np.abs(xs).max()), 1e-300):
        raise ReseqError("all outlier scores are equal; there is no distribution to fit")
    from scipy.stats import gengamma

    a, c, loc, scale = _fit_gengamma(xs, seed)
    params = (a, c, loc * unit, scale * unit)
    T = float(gengamma.ppf(quantile, *params))
    if not np.isfinite(T):
        raise ReseqError("the generalized gamma fit gave no finite threshold")
    mask = x > T
    return Outliers(scores=x, params=params, threshold=T, mask=mask,
                    indices=np.flatnonzero(mask), k=k, quantile=float(quantile))
