"""Writing an evaluation: CSV tables, a Markdown summary and the paper's figures (7a, 7b, 8).

:func:`write_report` writes into a folder:

- ``results.csv`` — one row per clip and metric (clip, style, frames, metric, setting, tau,
  cost_found, cost_true, true_order_shorter, solver_gap, failure). Only deterministic values, in a
  fixed format, so a rerun with the same seed gives the same bytes;
- ``sweep.csv`` — every LLE / Isomap setting of every clip;
- ``timings.csv`` — seconds per clip and metric (wall time: differs between runs);
- ``summary.md`` — mean and median tau, perfect reconstructions and failure kinds per metric, and
  the mean tau per style;
- ``fig7a_sorted_tau.png`` (each metric's taus sorted independently), ``fig7b_boxplot.png``
  (box and whisker, whiskers at min/max) and ``fig8_mean_tau.png`` (mean tau bars).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._util import atomic_path, check_writable
from .protocol import Evaluation, Result

__all__ = ["REPORT_FILES", "metric_table", "summary_markdown", "write_report"]

REPORT_FILES = ("results.csv", "sweep.csv", "timings.csv", "summary.md",
                "fig7a_sorted_tau.png", "fig7b_boxplot.png", "fig8_mean_tau.png")
_FIELDS = ("clip", "style", "frames", "metric", "setting", "tau", "cost_found", "cost_true",
           "true_order_shorter", "solver_gap", "failure")


def _csv_text(rows: Sequence[Result]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(r.row())
    return buf.getvalue()


def _metrics(rows: Sequence[Result]) -> list[str]:
    return list(dict.fromkeys(r.metric for r in rows))


def metric_table(rows: Sequence[Result]) -> list[dict]:
    """Per metric: n, mean and median tau, perfect reconstructions, metric and solver failures."""
    table = []
    for m in _metrics(rows):
        mine = [r for r in rows if r.metric == m]
        taus = np.array([r.tau for r in mine])
        table.append({"metric": m, "clips": len(mine), "mean": float(taus.mean()),
                      "median": float(np.median(taus)), "perfect": int((taus == 0).sum()),
                      "metric_failures": sum(r.failure == "metric" for r in mine),
                      "solver_failures": sum(r.failure == "solver" for r in mine),
                      "worst": max(mine, key=lambda r: r.tau)})
    return table


def summary_markdown(ev: Evaluation) -> str:
    """The Markdown summary of an evaluation (deterministic for a given results list)."""
    rows = ev.results
    cfg = ev.config
    lines = ["# Reconstruction evaluation", "",
             f"Corpus `{cfg.get('corpus')}`, K = {cfg.get('every')} (every K-th frame kept), seed "
             f"{cfg.get('seed')}, working size {cfg.get('size')} px; {len(cfg.get('clips', []))} "
             "non-cyclic clips"
             + (f" (skipped, fewer than 4 frames: {', '.join(cfg['skipped'])})"
                if cfg.get("skipped") else "") + ".",
             "", "Normalized Kendall tau distance of the reconstructed order (0 = perfect, "
             "1 = reversed). A *metric* failure: the true order is not shorter than the path "
             "found (the distance prefers a wrong order); a *solver* failure: the true order is "
             "shorter, so the solver missed a better path. `greedy-lpips` and `ssim-2opt` fix "
             "only the first frame.", ""]
    if cfg.get("dae"):
        lines += [f"DAE: {cfg['dae']}", ""]
    lines += ["| metric | clips | mean tau | median tau | perfect | metric failures | "
              "solver failures | worst clip (tau) |",
              "|---|---|---|---|---|---|---|---|"]
    table = metric_table(rows)
    for t in sorted(table, key=lambda t: (t["mean"], t["metric"])):
        w = t["worst"]
        lines.append(f"| {t['metric']} | {t['clips']} | {t['mean']:.4f} | {t['median']:.4f} | "
                     f"{t['perfect']}/{t['clips']} | {t['metric_failures']} | "
                     f"{t['solver_failures']} | {w.clip} ({w.tau:.3f}) |")
    styles = sorted({r.style or "-" for r in rows})
    lines += ["", "Mean tau per style (clips per style in the header):", "",
              "| metric | " + " | ".join(
                  f"{s} ({len({r.clip for r in rows if (r.style or '-') == s})})"
                  for s in styles) + " |",
              "|---|" + "---|" * len(styles)]
    for m in _metrics(rows):
        cells = []
        for s in styles:
            taus = [r.tau for r in rows if r.metric == m and (r.style or "-") == s]
            cells.append(f"{np.mean(taus):.4f}" if taus else "")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    settings = {}
    for r in rows:
        if r.metric.endswith("-global"):
            settings[r.metric] = " ".join(r.setting.split(" ")[:2])
    if settings:
        lines += ["", "Single best global LLE/Isomap settings (lowest mean tau over the corpus): "
                  + ", ".join(f"{m} {s}" for m, s in settings.items()) + "."]
    lines += ["", "Per-clip values: `results.csv`; every LLE/Isomap setting: `sweep.csv`; "
              "wall times: `timings.csv`. Figures: `fig7a_sorted_tau.png`, `fig7b_boxplot.png`, "
              "`fig8_mean_tau.png`.", ""]
    return "\n".join(lines)


def _figures(rows: Sequence[Result], out: Path, force: bool) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    metrics = _metrics(rows)
    taus = {m: np.array([r.tau for r in rows if r.metric == m]) for m in metrics}

    fig, ax = plt.subplots(figsize=(8, 5))
    markers = "osD^v<>pX*hP"
    for i, m in enumerate(metrics):
        ax.plot(np.sort(taus[m]), marker=markers[i % len(markers)], markersize=3, label=m,
                color=plt.cm.tab20(i % 20), linestyle="-" if i % 2 == 0 else "--")
    ax.set_xlabel("clip (sorted independently per metric)")
    ax.set_ylabel("normalized Kendall tau distance")
    ax.set_title("Reconstruction error per clip (cf. paper Fig. 7a)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    _save(fig, out / "fig7a_sorted_tau.png", force)

    fig, ax = plt.subplots(figsize=(9, 5))
    ax.boxplot([taus[m] for m in metrics], whis=(0, 100), showmeans=False)
    ax.set_xticks(range(1, len(metrics) + 1), metrics, rotation=45, ha="right")
    ax.set_ylabel("normalized Kendall tau distance")
    ax.set_title("Box and whisker (min/max whiskers; cf. paper Fig. 7b)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, out / "fig7b_boxplot.png", force)

    fig, ax = plt.subplots(figsize=(9, 5))
    means = [float(taus[m].mean()) for m in metrics]
    ax.bar(range(len(metrics)), means, color="tab:blue")
    ax.set_xticks(range(len(metrics)), metrics, rotation=45, ha="right")
    for i, v in enumerate(means):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
    ax.set_ylabel("mean normalized Kendall tau distance")
    ax.set_title("Mean reconstruction error (cf. paper Fig. 8)")
    fig.tight_layout()
    _save(fig, out / "fig8_mean_tau.png", force)


def _save(fig, path: Path, force: bool) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _write_text(path: Path, text: str, force: bool) -> None:
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def write_report(ev: Evaluation, out: str | Path, force: bool = False) -> list[Path]:
    """Write the report files (:data:`REPORT_FILES`) into folder ``out``; returns their paths.

    Refuses (before writing anything) to overwrite existing report files unless ``force``.
    """
    out = Path(out)
    paths = [out / name for name in REPORT_FILES]
    for p in paths:
        check_writable(p, force)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "results.csv", _csv_text(ev.results), force)
    _write_text(out / "sweep.csv", _csv_text(ev.sweep), force)
    timings = "clip,metric,seconds\n" + "".join(
        f"{c},{m},{s:.3f}\n" for c, m, s in ev.timings)
    _write_text(out / "timings.csv", timings, force)
    _write_text(out / "summary.md", summary_markdown(ev), force)
    if ev.results:
        _figures(ev.results, out, force)
    return paths
