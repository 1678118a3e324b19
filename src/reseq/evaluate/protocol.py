"""The reconstruction protocol (paper section 5.3.5), run per clip and per metric.

For each non-cyclic clip of a corpus (a folder with one sub-folder of frames per clip in true
order, and an optional ``manifest.csv`` with ``clip``, ``style`` and ``cyclic`` columns):

1. keep every K-th frame (default 3) and shuffle them with ``numpy.random.default_rng`` seeded by
   ``(seed, crc32(clip name))``;
2. compute the complete graph with the metric's distances between the shuffled frames;
3. find the shortest Hamiltonian path from the true first to the true last frame
   (:func:`reseq.graph.order`) — or, for the two script baselines, the heuristic path from the
   first frame with a free end (``greedy-lpips``: nearest-neighbour chain; ``ssim-2opt``: greedy
   chain + 2-opt);
4. score it with :func:`~reseq.evaluate.kendall.kendall_tau_distance` against the true order.

Each result also says whose failure an error is: ``cost_true`` is the length of the true order
under the metric and ``cost_found`` that of the path found. If the true order is shorter
(``true_order_shorter``) a better path was missed: a *solver* failure; otherwise the metric itself
prefers a wrong order: a *metric* failure. ``solver_gap`` = cost_found / cost_true − 1.

``lpips-alex-motion`` (issue 16, an experiment that is not the default; see
:mod:`reseq.evaluate.motion` and ``docs/motion-objective.md``) starts from the ``lpips-alex``
path and searches under the LPIPS length plus a hinge on sharp turns; its ``cost_found`` and
``cost_true`` are under that objective.

LLE and Isomap are swept over k in 2..10 and d in 2..20 (171 settings); ``lle-best`` keeps the
best setting per clip (the paper's optimistic choice), ``lle-global`` the one setting with the
lowest mean tau over the corpus (still tuned on the clips, but a single choice). Every setting's
score is kept in :attr:`Evaluation.sweep`.
"""

from __future__ import annotations

import csv
import dataclasses
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._util import progress
from ..errors import ReseqError
from . import baselines as bl
from .kendall import kendall_tau_distance

__all__ = [
    "METRICS",
    "Clip",
    "Evaluation",
    "Result",
    "evaluate_corpus",
    "evaluate_frames",
    "read_corpus",
    "score_path",
]

METRICS = ("l2", "dae", "lle", "isomap", "cosine-alex", "cosine-vgg", "lpips-alex",
           "lpips-vgg", "greedy-lpips", "ssim-2opt", "lpips-alex-motion")
_SWEPT = ("lle", "isomap")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclasses.dataclass(frozen=True)
class Clip:
    """One clip of a corpus: its folder, style and whether it loops."""

    name: str
    path: Path
    style: str = ""
    cyclic: bool = False


@dataclasses.dataclass(frozen=True)
class Result:
    """The score of one reconstruction (one clip, one metric, one setting)."""

    clip: str
    style: str
    frames: int
    metric: str
    setting: str
    tau: float
    cost_found: float
    cost_true: float
    true_order_shorter: bool
    solver_gap: float
    failure: str  #: "" (perfect), "metric" or "solver"

    def row(self) -> dict[str, str]:
        """CSV fields, formatted so that equal results give equal bytes."""
        return {"clip": self.clip, "style": self.style, "frames": str(self.frames),
                "metric": self.metric, "setting": self.setting, "tau": f"{self.tau:.6f}",
                "cost_found": f"{self.cost_found:.6g}", "cost_true": f"{self.cost_true:.6g}",
                "true_order_shorter": "yes" if self.true_order_shorter else "no",
                "solver_gap": f"{self.solver_gap:.4f}", "failure": self.failure}


@dataclasses.dataclass
class Evaluation:
    """Everything :func:`evaluate_corpus` measured."""

    results: list[Result]
    sweep: list[Result]
    timings: list[tuple[str, str, float]]  #: (clip, metric, seconds)
    config: dict


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("yes", "y", "true", "1")


def read_corpus(corpus: str | Path, include_cyclic: bool = False) -> list[Clip]:
    """The clips of ``corpus`` (sub-folders with images), sorted by name; loops left out.

    ``manifest.csv`` (optional) gives each clip's ``style`` and ``cyclic`` (yes/no) columns.
    """
    corpus = Path(corpus)
    if not corpus.exists():
        raise ReseqError(f"corpus {corpus} does not exist")
    if not corpus.is_dir():
        raise ReseqError(f"corpus {corpus} is not a folder of clip folders")
    manifest: dict[str, dict[str, str]] = {}
    mpath = corpus / "manifest.csv"
    if mpath.is_file():
        try:
            with open(mpath, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if not reader.fieldnames or "clip" not in reader.fieldnames:
                    raise ReseqError(f"{mpath} has no 'clip' column")
                manifest = {row["clip"]: row for row in reader}
        except UnicodeDecodeError as exc:
            raise ReseqError(f"{mpath} is not UTF-8 text (byte {exc.start}); save it as "
                             "UTF-8") from None
        except csv.Error as exc:
            raise ReseqError(f"{mpath} is not a readable CSV file: {exc}") from None
        except OSError as exc:
            raise ReseqError(f"cannot read {mpath}: {exc.strerror or exc}") from None
    clips = []
    try:
        subs = sorted(p for p in corpus.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise ReseqError(f"cannot read corpus {corpus}: {exc.strerror or exc}") from None
    for sub in subs:
        try:
            if not any(f.suffix.lower() in _IMAGE_SUFFIXES for f in sub.iterdir()):
                continue
        except OSError as exc:
            raise ReseqError(f"cannot read clip folder {sub}: {exc.strerror or exc}") from None
        info = manifest.get(sub.name, {})
        clip = Clip(sub.name, sub, (info.get("style") or "").strip(),
                    _truthy(info.get("cyclic") or "no"))
        if include_cyclic or not clip.cyclic:
            clips.append(clip)
    if not clips:
        raise ReseqError(f"corpus {corpus} has no non-cyclic clip folders with images")
    return clips


def _shuffle(name: str, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, zlib.crc32(name.encode())]).permutation(n)


def score_path(D: np.ndarray, perm: np.ndarray, path: np.ndarray) -> tuple[float, float, float]:
    """(tau, cost_found, cost_true) of ``path`` (indices into the shuffled frames).

    ``perm[i]`` is the true index of shuffled frame ``i``; ``D`` is between shuffled frames.
    """
    inv = np.argsort(perm)
    true_path = inv[np.arange(len(perm))]
    return (kendall_tau_distance(perm[path]), bl.path_cost(D, path), bl.path_cost(D, true_path))


def _result(clip: Clip, n: int, metric: str, setting: str, D: np.ndarray, perm: np.ndarray,
            path: np.ndarray) -> Result:
    tau, found, true = score_path(D, perm, path)
    shorter = bool(true < found * (1 - 1e-9))
    gap = found / true - 1.0 if true > 0 else 0.0
    failure = "" if tau == 0 else ("solver" if shorter else "metric")
    return Result(clip.name, clip.style, n, metric, setting, tau, found, true, shorter, gap,
                  failure)


def _motion_result(clip: Clip, n: int, D: np.ndarray, perm: np.ndarray, base: np.ndarray
                   ) -> Result:
    from .motion import improve, motion_objective, objective_cost

    obj = motion_objective(D, base)
    path = improve(obj, base)
    inv = np.argsort(perm)
    tau = kendall_tau_distance(perm[path])
    found, true = objective_cost(obj, path), objective_cost(obj, inv)
    shorter = bool(true < found * (1 - 1e-9))
    gap = found / true - 1.0 if true > 0 else 0.0
    failure = "" if tau == 0 else ("solver" if shorter else "metric")
    return Result(clip.name, clip.style, n, "lpips-alex-motion", "", tau, found, true, shorter,
                  gap, failure)


def _hamiltonian(D: np.ndarray, start: int, end: int, seed: int) -> np.ndarray:
    from ..graph import order

    # The default solver is deterministic (kick counts from N, no clock); no time cap, so a
    # loaded machine cannot cut the search short.
    path = np.asarray(order(D, start=start, end=end, seed=seed).order, dtype=np.intp)
    if len(path) and path[0] != start and path[-1] == start:
        path = path[::-1]
    if len(path) != len(D) or path[0] != start or path[-1] != end:
        raise RuntimeError("reseq.graph.order returned a path that breaks its contract")
    return path


def _solve_many(matrices: list[np.ndarray], start: int, end: int, seed: int,
                n_jobs: int) -> list[np.ndarray]:
    if n_jobs == 1 or len(matrices) < 2:
        return [_hamiltonian(D, start, end, seed) for D in matrices]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(delayed(_hamiltonian)(D, start, end, seed) for D in matrices)


def _deep(x: np.ndarray, metric: str, cache: dict) -> np.ndarray:
    if metric not in cache:
        from ..distances import distance_matrix

        kind, net = metric.split("-")
        cache[metric] = distance_matrix(x, metric=kind, net=net, progress=False)
    return cache[metric]


def evaluate_frames(clip: Clip, array: np.ndarray, metrics: Sequence[str] = METRICS,
                    seed: int = 0, dae_model=None,
                    on_metric: Callable[[str, float], None] | None = None, n_jobs: int = 1
                    ) -> tuple[list[Result], list[Result]]:
    """Run the protocol on one clip's frames (already subsampled, in true order).

    Returns (results, sweep): one result per non-swept metric, and every LLE/Isomap setting
    (metric ``lle`` / ``isomap``, ``setting`` ``k=.. d=..``) in ``sweep``. ``on_metric(metric,
    seconds)`` is called after each metric. ``n_jobs`` solves the LLE/Isomap sweep's paths in
    parallel (joblib).
    """
    n = len(array)
    if n < 3:
        raise ReseqError(f"clip {clip.name} has {n} frames after subsampling; need at least 3")
    perm = _shuffle(clip.name, n, seed)
    x = np.ascontiguousarray(array[perm])
    inv = np.argsort(perm)
    start, end = int(inv[0]), int(inv[-1])
    results: list[Result] = []
    sweep: list[Result] = []
    cache: dict[str, np.ndarray] = {}  # matrices by metric, and the lpips-alex path
    for metric in metrics:
        t0 = time.perf_counter()
        if metric in _SWEPT:
            settings = list(bl.manifold_matrices(x, metric))
            # clamped settings of a short clip repeat the same matrix: solve each one once
            unique = {}
            for _, _, k_used, d_used, D in settings:
                unique.setdefault((k_used, d_used), D)
            solved = dict(zip(unique, _solve_many(list(unique.values()), start, end, seed,
                                                  n_jobs), strict=True))
            for k, d, k_used, d_used, D in settings:
                setting = f"k={k} d={d}"
                if (k_used, d_used) != (k, d):
                    setting += f" (used k={k_used} d={d_used})"
                sweep.append(_result(clip, n, metric, setting, D, perm,
                                     solved[k_used, d_used]))
        else:
            if metric == "l2":
                D = bl.l2_matrix(x)
            elif metric == "dae":
                from .dae import dae_distance_matrix

                if dae_model is None:
                    raise ReseqError("the dae metric needs a trained DAE (--dae model.pt)")
                D = dae_distance_matrix(dae_model, x)
            elif metric in ("cosine-alex", "cosine-vgg", "lpips-alex", "lpips-vgg"):
                D = _deep(x, metric, cache)
            elif metric == "greedy-lpips":
                D = _deep(x, "lpips-alex", cache)
            elif metric == "ssim-2opt":
                D = bl.ssim_matrix(x)
            elif metric == "lpips-alex-motion":
                D = _deep(x, "lpips-alex", cache)
            else:
                raise ReseqError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
            if metric == "lpips-alex-motion":
                if "path:lpips-alex" not in cache:
                    cache["path:lpips-alex"] = _hamiltonian(D, start, end, seed)
                results.append(_motion_result(clip, n, D, perm, cache["path:lpips-alex"]))
                if on_metric is not None:
                    on_metric(metric, time.perf_counter() - t0)
                continue
            if metric == "greedy-lpips":
                path = bl.greedy_chain(D, start)
            elif metric == "ssim-2opt":
                path = bl.two_opt(D, bl.greedy_chain(D, start))
            else:
                path = _hamiltonian(D, start, end, seed)
            if metric == "lpips-alex":
                cache["path:lpips-alex"] = path
            results.append(_result(clip, n, metric, "", D, perm, path))
        if on_metric is not None:
            on_metric(metric, time.perf_counter() - t0)
    return results, sweep


def _settings_key(setting: str) -> tuple[int, int]:
    k, d = setting.split(" ")[:2]  # "k=3 d=5" or "k=9 d=5 (used k=7 d=5)"
    return int(k[2:]), int(d[2:])


def _summarise_sweep(sweep: list[Result], clips: list[Clip]) -> dict[str, list[Result]]:
    """Per swept method: the best-per-clip rows and the best-global-setting rows."""
    out: dict[str, list[Result]] = {}
    for method in _SWEPT:
        rows = [r for r in sweep if r.metric == method]
        if not rows:
            continue
        by_setting: dict[tuple[int, int], list[float]] = {}
        for r in rows:
            by_setting.setdefault(_settings_key(r.setting), []).append(r.tau)
        best_setting = min(by_setting, key=lambda s: (float(np.mean(by_setting[s])), s))
        best, glob = [], []
        for clip in clips:
            mine = [r for r in rows if r.clip == clip.name]
            if not mine:
                continue
            top = min(mine, key=lambda r: (r.tau, _settings_key(r.setting)))
            best.append(dataclasses.replace(top, metric=f"{method}-best"))
            g = next(r for r in mine if _settings_key(r.setting) == best_setting)
            glob.append(dataclasses.replace(g, metric=f"{method}-global"))
        out[method] = best + glob
    return out


def _load_clip(clip: Clip, every: int, size: int) -> np.ndarray:
    from ..frames import load_frames

    return np.asarray(load_frames(clip.path, size=size, every=every, progress=False).array)


def evaluate_corpus(corpus: str | Path, every: int = 3, metrics: Sequence[str] = METRICS,
                    seed: int = 0, size: int = 256, dae_model=None,
                    show_progress: bool = True, n_jobs: int = 1) -> Evaluation:
    """Run the protocol on every non-cyclic clip of ``corpus`` for every metric.

    ``size`` is the working size given to :func:`reseq.frames.load_frames` (all metrics see the
    same frames; the DAE rescales them to 320×180). Results are ordered by clip, then by
    ``metrics`` (``lle`` → ``lle-best``, ``lle-global``).
    """
    if every < 1:
        raise ReseqError(f"--every must be at least 1, got {every}")
    metrics = list(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ReseqError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    if not metrics:
        raise ReseqError("no metric to evaluate")
    if "dae" in metrics and dae_model is None:
        raise ReseqError("the dae metric needs a trained DAE")
    clips = read_corpus(corpus)
    per_clip: dict[str, list[Result]] = {}
    sweep: list[Result] = []
    timings: list[tuple[str, str, float]] = []
    bar = progress(range(len(clips) * len(metrics)), desc="evaluate", total=len(clips) * len(metrics),
                   enabled=show_progress)
    it = iter(bar)
    used: list[Clip] = []
    for clip in clips:
        array = _load_clip(clip, every, size)
        if len(array) < 4:
            # too short to say anything (and LLE/Isomap need 4 frames): skipped, not scored
            for _ in metrics:
                next(it, None)
            continue
        used.append(clip)

        def tick(metric: str, seconds: float, clip: Clip = clip) -> None:
            timings.append((clip.name, metric, seconds))
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{clip.name} {metric}")
            next(it, None)

        res, sw = evaluate_frames(clip, array, metrics, seed, dae_model, on_metric=tick,
                                  n_jobs=n_jobs)
        per_clip[clip.name] = res
        sweep.extend(sw)
    for _ in it:  # close the bar
        pass
    swept = _summarise_sweep(sweep, used)
    order = []
    for m in metrics:
        order += [f"{m}-best", f"{m}-global"] if m in _SWEPT else [m]
    results = []
    for clip in used:
        rows = per_clip[clip.name] + [r for m in _SWEPT for r in swept.get(m, [])
                                      if r.clip == clip.name]
        results += sorted(rows, key=lambda r: order.index(r.metric))
    config = {"corpus": str(corpus), "every": every, "seed": seed, "size": size,
              "metrics": metrics, "clips": [c.name for c in used],
              "skipped": [c.name for c in clips if c not in used]}
    return Evaluation(results, sweep, timings, config)
