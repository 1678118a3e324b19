"""``reseq order | loop | inbetween | outliers``: the commands people run reseq for.

Each command loads SOURCE (:func:`reseq.frames.load_frames`), measures the distance matrix
(:func:`reseq.distances.distance_matrix`), optionally shuffles the frames (``--shuffle``, to
demonstrate reconstruction) and removes outliers (``--remove-outliers``), runs one graph
algorithm of :mod:`reseq.graph`, and writes the result through :mod:`reseq.render`: an MP4, a
GIF or a PNG folder, an index file, a contact sheet. Every output path is checked before any
work starts, so an existing file without ``--force`` fails at once, not after the distances.

Frames are named as the user knows them (``--start``, ``--end``, ``--keys``): a file name (with
or without extension), the ``frame 120`` of a video label, or a 0-based frame number of SOURCE
as loaded (after ``--every``); see :func:`reseq.frames.frame_index`. ``--shuffle`` does not
change what these names mean.

A path with free ends, and a loop, have no direction of their own: they are written running the
way SOURCE runs (the direction, and for loops the starting frame, that best follows SOURCE's
order); the summary gives the Kendall tau distance between the output order and SOURCE's
order (0 = same order, 1 = reversed).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from .._util import Output
from ..errors import ReseqError
from . import main
from .assets import SIZE

#: click type of every --seed option: numpy's seeds are non-negative.
SEED = click.IntRange(0, 2**32 - 1)


class Real(click.FloatRange):
    """A click.FloatRange that also refuses nan and infinity."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv

__all__ = ["inbetween_cmd", "loop_cmd", "order_cmd", "outliers_cmd"]


# ---------------------------------------------------------------------------------------------
# shared options


def _frame_options(f):
    opts = [
        click.option("--metric", type=click.Choice(["lpips", "cosine", "l2"]), default="lpips",
                     show_default=True, help="Distance between frames."),
        click.option("--net", type=click.Choice(["alex", "vgg"]), default="alex",
                     show_default=True, help="Network for lpips/cosine."),
        click.option("--size", type=SIZE, default="256", show_default=True,
                     help="Working long edge in pixels (at most: smaller frames keep their "
                          "size unless --upscale), or 'native'."),
        click.option("--upscale", is_flag=True,
                     help="Scale frames smaller than --size up to it (default: never upscale)."),
        click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Keep every K-th frame of SOURCE."),
        click.option("--seed", type=SEED, default=0, show_default=True,
                     help="Seed for every random choice (0 .. 2^32 - 1)."),
        click.option("--shuffle", is_flag=True,
                     help="Shuffle the frames (with --seed) before sequencing: a reconstruction "
                          "demo."),
        click.option("--force", is_flag=True, help="Overwrite existing output files."),
        click.option("--sparse", is_flag=True,
                     help="Use the sparse path (sketches and a nearest-neighbour graph; "
                          "APPROXIMATE distances, no N x N matrix) at any N; it is chosen "
                          "automatically above 8000 frames (lpips only)."),
        click.option("--scheduler", envvar="RESEQ_DASK_SCHEDULER", metavar="tcp://HOST:PORT",
                     help="Sparse path: compute the sketches and the exact neighbour search "
                          "on this Dask scheduler's workers (default: $RESEQ_DASK_SCHEDULER, "
                          "else in this process); they decode a video or folder SOURCE "
                          "themselves (same path on every machine)."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]),
                     default="auto", show_default=True,
                     help="Where the networks run and the Gram matrix is multiplied (auto: a "
                          "GPU when there is one)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


_effort_option = click.option(
    "--effort", type=Real(0, 100, min_open=True), default=1.0, show_default=True,
    help="Search effort of the path solver: a multiplier of the kicks of its local searches "
         "(the result stays deterministic; on 1000 frames 4 takes about 2.5x the time and is "
         "usually, not always, a little shorter; at most 100).")


def _output_options(required: bool = True):
    def deco(f):
        opts = [
            click.option("-o", "--output", required=required, type=click.Path(),
                         help="out.mp4, out.gif, or a folder ending in '/' for PNG frames."),
            click.option("--fps", type=Real(0, 1000, min_open=True), default=12.0,
                         show_default=True, help="Frames per second of the output."),
            click.option("--index", "index", type=click.Path(dir_okay=False),
                         help="Write a JSON index: one record per output frame."),
            click.option("--index-csv", is_flag=True,
                         help="Also write the index as CSV (beside --index, or the output)."),
            click.option("--sheet", type=click.Path(dir_okay=False),
                         help="Write a contact sheet PNG of the output."),
            click.option("--play-once", is_flag=True, help="GIF: play once instead of looping."),
            click.option("--remove-outliers", is_flag=True,
                         help="Drop outlier frames (paper section 4.3) before sequencing."),
            click.option("--k", "outlier_k", type=click.IntRange(min=1), default=5,
                         show_default=True, help="Neighbours for --remove-outliers."),
            click.option("--quantile", "outlier_q", type=Real(0, 1, min_open=True,
                         max_open=True), default=0.9, show_default=True,
                         help="Generalized-gamma quantile for --remove-outliers."),
            click.option("--synthesize", is_flag=True,
                         help="Fill long steps with VAE in-betweens (needs --model)."),
            click.option("--model", type=click.Path(dir_okay=False),
                         help="VAE checkpoint for --synthesize (see `reseq vae train`)."),
            click.option("--synth-threshold", type=Real(0, min_open=True),
                         help="Steps longer than this get in-betweens (default: the 0.95 "
                              "quantile of nearest-neighbour distances)."),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return deco


# ---------------------------------------------------------------------------------------------
# the run: frames, distances, bookkeeping of where each working frame came from


@dataclass
class _Run:
    command: str
    source: str
    opts: dict
    frames: Any = None  # reseq.frames.Frames in working order
    D: np.ndarray | None = None
    src: np.ndarray | None = None  # working index -> frame number in SOURCE as loaded
    n_loaded: int = 0
    notes: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)
    out_frames: Any = None  # n -> the number of output frames, for the memory estimate

    # -- loading -----------------------------------------------------------------------------
    def load(self, keys: dict[str, Any] | None = None, solver: bool = False) -> dict[str, Any]:
        """Load, resolve frame names in ``keys`` (to SOURCE numbers), shuffle, measure D.

        ``solver``: the command will solve a path or cycle, so the search kernels are loaded in
        a background thread meanwhile."""
        from ..frames import frame_index, load_frames

        if solver:
            import threading

            from ..graph.tsp import warm_up

            def warm() -> None:
                try:
                    warm_up()
                except Exception:  # only a head start: the real solve reports any error
                    pass

            threading.Thread(target=warm, daemon=True).start()
        o = self.opts
        t = time.perf_counter()
        frames = load_frames(self.source, size=o["size"], every=o["every"], progress=True,
                             upscale=o.get("upscale", False))
        self.n_loaded = len(frames)
        native = ""
        if (o["size"] is not None and not o.get("upscale")
                and max(frames.width, frames.height) < o["size"]):
            native = f" (native size, below --size {o['size']}; --upscale scales up)"
            if _explicit("size"):
                import warnings

                from ..errors import ReseqWarning

                warnings.warn(f"--size {o['size']} is larger than the frames "
                              f"({frames.width}x{frames.height}): kept their native size; add "
                              "--upscale to scale them up", ReseqWarning, stacklevel=2)
        self.notes.append(f"frames: {len(frames)} at {frames.width}x{frames.height}" + native
                          + (f" (every {o['every']})" if o["every"] > 1 else "")
                          + (", shuffled" if o["shuffle"] else "")
                          + f", loaded in {time.perf_counter() - t:.1f} s")
        if len(frames) < 2:
            raise ReseqError(f"{self.source}: need at least 2 frames, got {len(frames)}")
        self.check_memory(frames)
        resolved: dict[str, Any] = {}
        for name, value in (keys or {}).items():
            if value is None:
                resolved[name] = None
            elif isinstance(value, list):
                resolved[name] = [frame_index(frames, v) for v in value]
            else:
                resolved[name] = frame_index(frames, value)
        from ..distances import distance_matrix  # imports torch: after the cheap checks

        t = time.perf_counter()
        if _use_sparse(o, len(frames)):
            D = _sparse_distances(frames, o, self.source)
            self.notes.append(f"distances: APPROXIMATE sparse path ({o['metric']}/{o['net']} "
                              f"sketches d={D.S.shape[1]}, {D.graph.nnz // 2} neighbour edges; "
                              + ("--sparse" if o.get("sparse") else
                                 f"{len(frames)} frames > {_dense_max()}")
                              + f") in {time.perf_counter() - t:.1f} s")
            from ..graph.sparse import REFINE_MAX

            if len(frames) > REFINE_MAX:
                self.notes.append(f"path search: greedy matching and local search only (no "
                                  f"window re-solves above {REFINE_MAX:,} frames)")
        else:
            try:
                D = distance_matrix(frames, metric=o["metric"], net=o["net"], progress=True,
                                    device=o.get("device", "auto"))
            except ReseqError as exc:
                if native and "too small" in str(exc):  # --size cannot help without --upscale
                    raise ReseqError(f"frames of {frames.width}x{frames.height} px (their native "
                                     f"size) are too small for {o['net']}; add --upscale to "
                                     f"scale them up to --size {o['size']}") from None
                raise
            self.notes.append(f"distances: {o['metric']}"
                              + ("" if o["metric"] == "l2" else f"/{o['net']}")
                              + f" in {time.perf_counter() - t:.1f} s")
        src = np.arange(len(frames))
        if o["shuffle"]:
            src = np.random.default_rng(o["seed"]).permutation(len(frames))
            frames, D = frames[src], D[np.ix_(src, src)]
        self.frames, self.D, self.src = frames, D, src
        return resolved

    def check_memory(self, frames) -> None:
        """The N x N matrices and the output frames must fit, before the distances start (an
        output of frames kept on disk goes to disk too)."""
        from .._util import check_memory, is_on_disk

        n, w, h = len(frames), frames.width, frames.height

        if _use_sparse(self.opts, n):  # sketches (d = 1024 float32) and k = 10 neighbour lists
            check_memory(n * (1024 * 4 + 2 * 10 * 24), f"the sketches of {n:,} frames")
        else:
            check_memory(3 * 8 * n * n, f"the {n:,} x {n:,} distance matrix")
        m = self.out_frames(n) if self.out_frames is not None else n
        if is_on_disk(frames.array):  # the output's frames go to disk as well
            check_memory(m * 600, f"an output of {m:,} frames")
        else:
            check_memory(m * (2 * w * h * 3 + 600), f"an output of {m:,} frames at {w}x{h}")

    def remove_outliers(self, k: int, quantile: float) -> None:
        from ..graph import outliers

        res = outliers(self.D, k=k, quantile=quantile)
        mask = np.asarray(res.mask, dtype=bool)
        keep = np.flatnonzero(~mask)
        if len(keep) < 2:
            raise ReseqError("removing outliers would leave fewer than 2 frames")
        names = [self.frames.labels[i] for i in np.flatnonzero(mask)]
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} in all)" if len(names) > 8 else "")
        self.notes.append(f"outliers removed: {len(names)} (T = {float(res.threshold):.4g})"
                          + (f": {shown}" if names else ""))
        self.subset(keep)

    def subset(self, keep: np.ndarray, note: str | None = None) -> None:
        """Keep only the working frames ``keep`` (indices, in working order)."""
        self.frames = self.frames[keep]
        self.D = self.D[np.ix_(keep, keep)]
        self.src = self.src[keep]
        if note:
            self.notes.append(note)

    def working(self, source_number: int, what: str) -> int:
        """Working index of a frame given by its SOURCE number (fails if it was removed)."""
        hits = np.flatnonzero(self.src == source_number)
        if not len(hits):
            raise ReseqError(f"{what} frame was removed as an outlier; choose another frame or "
                             "drop --remove-outliers")
        return int(hits[0])

    # -- output ------------------------------------------------------------------------------
    def steps(self, seq: np.ndarray, closed: bool) -> np.ndarray:
        nxt = np.roll(seq, -1) if closed else seq[1:]
        return self.D[seq[: len(nxt)], nxt]

    def tau(self, seq: np.ndarray) -> float:
        from ..evaluate.kendall import kendall_tau_distance

        return kendall_tau_distance(self.src[seq])

    def write(self, seq: np.ndarray, closed: bool, title: str,
              more: list[tuple[Path | str, str]] | None = None) -> None:
        """Write the sequence ``seq`` (working indices) and print the summary."""
        from .._util import FrameView, frames_in_order, take_frames
        from ..render import contact_sheet, output_kind, write_sequence

        o = self.opts
        seq = np.asarray(seq, dtype=int)
        labels = [self.frames.labels[i] for i in seq]
        images = frames_in_order(self.frames.array, seq)
        steps = self.steps(seq, closed)
        dists: list[float | None] = [float(s) for s in steps]
        if not closed:
            dists.append(None)
        extra = [{"source_index": int(self.src[i])} for i in seq]
        biggest = self._largest(steps, labels)
        synth_lines: list[str] = []
        if o.get("synthesize"):
            if isinstance(images, FrameView):  # synthesis works on frames in memory
                images = take_frames(self.frames.array, seq)
            images, labels, dists, extra, synth_lines = self.synthesize(
                seq, images, labels, steps, closed)
        paths = write_sequence(o["output"], images, labels, dists, fps=o["fps"],
                               force=o["force"], index=o["index"], index_csv=o["index_csv"],
                               extra=extra, loop=not o["play_once"], check=False)
        m, fps = len(images), o["fps"]
        kind = output_kind(o["output"])
        h, w = images.shape[1:3]
        if kind == "png":
            what = f"{m} PNG frames, {w}x{h}"
        else:
            pad = kind == "mp4"
            what = f"{m} frames, {w + pad * (w % 2)}x{h + pad * (h % 2)}, {fps:g} fps, {m / fps:.2f} s"
            if kind == "gif":
                what += ", plays once" if o["play_once"] else ", loops"
        first = f"{paths[0]}/" if kind == "png" else paths[0]
        written = [(first, what)] + [(p, "index") for p in paths[1:]]
        if o["sheet"]:
            written.append((contact_sheet(o["sheet"], images, labels, n=16,
                                          title=f"{title}: {m} frames", force=o["force"]),
                            "contact sheet"))
        self.summary(m, biggest, synth_lines, written + (more or []))

    def _largest(self, steps: np.ndarray, labels: list[str]) -> str:
        if not len(steps):
            return "largest step 0 (a single frame)"
        j = int(np.argmax(steps))
        return (f"largest step {float(steps[j]):.4g} ({labels[j]} -> "
                f"{labels[(j + 1) % len(labels)]})")

    def summary(self, n_out: int, biggest: str, lines: list[str],
                written: list[tuple[Path | str, str]]) -> None:
        echo = click.echo
        echo(f"reseq {self.command}: {self.n_loaded} frames in from {self.source}, "
             f"{n_out} frames out")
        for note in self.notes:
            echo(f"  {note}")
        echo(f"  {biggest}")
        for line in lines:
            echo(f"  {line}")
        for p, what in written:
            echo(f"  wrote {p} ({what})")
        echo(f"  done in {time.perf_counter() - self.t0:.1f} s")

    # -- synthesis ---------------------------------------------------------------------------
    def synthesize(self, seq, images, labels, steps, closed):
        from ..synth import default_gap_threshold, fill_gaps, load_model

        o = self.opts
        model = load_model(o["model"])
        threshold = o["synth_threshold"] or default_gap_threshold(self.D)
        new, synthetic, per_gap = fill_gaps(images, steps, model, threshold)
        made = int(synthetic.sum())
        # labels, provenance and distances of the new sequence
        real_pos = np.flatnonzero(~synthetic)
        out_labels: list[str] = []
        extra: list[dict] = []
        for gap in range(len(real_pos)):
            out_labels.append(labels[gap])
            extra.append({"source_index": int(self.src[seq[gap]])})
            c = int(per_gap[gap]) if gap < len(per_gap) else 0
            b = labels[(gap + 1) % len(labels)]
            for k in range(c):
                out_labels.append(f"synthetic {k + 1}/{c} {labels[gap]} -> {b}")
                extra.append({"source_index": None, "synthetic": True})
        m = len(new)
        pairs = [(i, (i + 1) % m) for i in range(m if closed else m - 1)]
        new_steps = np.empty(len(pairs))
        todo = []
        for p, (i, j) in enumerate(pairs):
            if synthetic[i] or synthetic[j]:
                todo.append(p)
            else:
                a = int(np.searchsorted(real_pos, i))
                b = int(np.searchsorted(real_pos, j))
                new_steps[p] = self.D[seq[a], seq[b]]
        if todo:
            new_steps[todo] = _pair_distances(new, [pairs[p] for p in todo], o["metric"],
                                              o["net"])
        dists: list[float | None] = [float(s) for s in new_steps]
        if not closed:
            dists.append(None)
        before = float(np.max(steps)) if len(steps) else 0.0
        after = float(np.max(new_steps)) if len(new_steps) else 0.0
        lines = [f"synthesized {made} in-between frames in {int((per_gap > 0).sum())} gaps "
                 f"longer than {threshold:.4g}: largest step {before:.4g} before, "
                 f"{after:.4g} after",
                 f"after synthesis: {self._largest(new_steps, out_labels)}"]
        return new, out_labels, dists, extra, lines


def _pair_distances(images: np.ndarray, pairs: list[tuple[int, int]], metric: str,
                    net: str, batch: int = 16) -> np.ndarray:
    """Distances of the given pairs of ``images``, as :func:`distance_matrix` measures them."""
    idx = sorted({i for pair in pairs for i in pair})
    where = {i: k for k, i in enumerate(idx)}
    if metric == "l2":
        emb = images[idx].reshape(len(idx), -1).astype(np.float64) / 255.0
        return np.array([math.sqrt(float(((emb[where[i]] - emb[where[j]]) ** 2).sum()))
                         for i, j in pairs])
    from ..features import lpips_embedding

    emb = np.concatenate([lpips_embedding(images[idx[s:s + batch]], net, metric)
                          for s in range(0, len(idx), batch)])
    return np.array([float(((emb[where[i]].astype(np.float64)
                             - emb[where[j]]) ** 2).sum()) for i, j in pairs])


def _dense_max() -> int:
    from ..graph.sparse import DENSE_MAX

    return DENSE_MAX


def _use_sparse(o: dict, n: int) -> bool:
    """The sparse path on ``--sparse``, or for lpips above :data:`reseq.graph.sparse.DENSE_MAX`
    frames; --synthesize needs the dense matrix."""
    if not (o.get("sparse") or (o["metric"] == "lpips" and n > _dense_max())):
        return False
    if o["metric"] != "lpips":
        raise ReseqError("--sparse needs --metric lpips (sketches estimate LPIPS)")
    if o.get("synthesize"):
        raise ReseqError(f"--synthesize needs the dense distance matrix: at most "
                         f"{_dense_max()} frames, without --sparse")
    return True


def _sparse_distances(frames, o: dict, source=None):
    """Sketches of ``frames`` and their candidate graph (:mod:`reseq.graph.sparse`).

    With ``--scheduler`` and a video or folder SOURCE, the workers decode SOURCE themselves
    (:func:`reseq.sketches.sketch_source`; they must see it at the same path); the frames they
    decoded are checked against ``frames`` (pixel hashes) before their sketches are used."""
    from ..graph.knn import knn_graph
    from ..sketches import _source_kind, sketch, sketch_source

    S = None
    if o.get("scheduler") and source is not None and _source_kind(source)[0]:
        from ..distances import frame_hashes

        got = sketch_source(source, size=o["size"], every=o["every"], net=o["net"], seed=0,
                            upscale=o.get("upscale", False), device=o.get("device", "auto"),
                            progress=True, scheduler=o["scheduler"])
        if got.hashes == frame_hashes(frames.array):
            S = got.array
        else:
            import warnings

            from ..errors import ReseqWarning

            warnings.warn(f"the Dask workers decoded {len(got)} frames of {source} that differ "
                          f"from the {len(frames)} decoded here (another reseq, PyAV or Pillow "
                          "on the workers?); sending the frames decoded here instead",
                          ReseqWarning, stacklevel=2)
    if S is None:
        S = sketch(frames, net=o["net"], seed=0, device=o.get("device", "auto"), progress=True,
                   scheduler=o.get("scheduler"))
    return knn_graph(S, k=10, show=True, scheduler=o.get("scheduler"))


def _orient(run: _Run, seq: np.ndarray, closed: bool) -> np.ndarray:
    """Turn a free path or a loop to run the way SOURCE runs."""
    seq = np.asarray(seq, dtype=int)
    if closed:
        seq = np.roll(seq, -int(np.argmin(run.src[seq])))
        rev = np.roll(seq[::-1], 1)
    else:
        rev = seq[::-1]
    return rev if run.tau(rev) < run.tau(seq) else seq


def _check_synth(o: dict) -> None:
    if o["synthesize"] and not o["model"]:
        raise ReseqError("--synthesize needs --model vae.pt (train one with `reseq vae train`)")
    if not o["synthesize"] and (o["model"] or o["synth_threshold"] is not None):
        raise ReseqError("--model and --synth-threshold only apply with --synthesize")
    if o["model"] and not Path(o["model"]).is_file():
        raise ReseqError(f"VAE checkpoint not found: {o['model']}")


def _explicit(name: str) -> bool:
    """Whether option ``name`` was given on the command line (not its default)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    src = ctx.get_parameter_source(name)
    return src is not None and src.name in ("COMMANDLINE", "ENVIRONMENT")


def _precheck(o: dict, source: str, others=()) -> None:
    """Every output checked against every input before any work (reseq._util.check_output_paths)."""
    from ..render import check_outputs

    if o.get("synthesize") is not None:
        _check_synth(o)
    check_outputs(o.get("output"), o.get("index"), o.get("index_csv", False),
                  others=[Output(o.get("sheet"), "--sheet"), *others], force=o["force"],
                  fps=o.get("fps"), sources=[source, o.get("model")])


# ---------------------------------------------------------------------------------------------
# commands


@main.command("order")
@click.argument("source")
@click.option("--start", help="First frame: a file name or 0-based frame number.")
@click.option("--end", help="Last frame: a file name or 0-based frame number.")
@_effort_option
@_output_options()
@_frame_options
def order_cmd(source: str, start: str | None, end: str | None, effort: float, **o) -> None:
    """Put the frames of SOURCE in their smoothest order (shortest Hamiltonian path).

    \b
    Example: reseq order sample:bunny --shuffle -o bunny.mp4 --sheet sheet.png
    """
    from ..graph import order

    _precheck(o, source)
    run = _Run("order", source, o)
    keys = run.load({"start": start, "end": end}, solver=True)
    if o["remove_outliers"]:
        run.remove_outliers(o["outlier_k"], o["outlier_q"])
    s = None if keys["start"] is None else run.working(keys["start"], "--start")
    e = None if keys["end"] is None else run.working(keys["end"], "--end")
    if s is not None and s == e:
        raise ReseqError("--start and --end name the same frame; for a loop use `reseq loop`")
    t = time.perf_counter()
    path = order(run.D, start=s, end=e, seed=o["seed"], effort=effort)
    seq = np.asarray(path.order, dtype=int)
    if s is None and e is None:
        seq = _orient(run, seq, closed=False)
    ends = ("free ends" if s is None and e is None else
            f"start {run.frames.labels[seq[0]]}" + ("" if e is None else
                                                     f", end {run.frames.labels[seq[-1]]}"))
    run.notes.append(f"path: cost {float(path.cost):.4g} over {len(seq)} frames ({ends}), "
                     f"solved in {time.perf_counter() - t:.1f} s")
    run.notes.append(f"Kendall tau distance to SOURCE order: {run.tau(seq):.4f} "
                     "(0 = same order, 1 = reversed)")
    run.write(seq, closed=False, title=f"reseq order {source}")


@main.command("loop")
@click.argument("source")
@click.option("--frames", "n_frames", type=click.IntRange(min=1),
              help="Chain the loop to this many output frames.")
@click.option("--seconds", type=Real(min=0, min_open=True),
              help="Chain the loop to this many seconds at --fps.")
@click.option("--sample", "sample_m", type=click.IntRange(min=2),
              help="Sample the loop uniformly into M frames (paper Figure 3).")
@click.option("--only", help="Loop over just these frames F1,F2,... (names or numbers).")
@_effort_option
@_output_options()
@_frame_options
def loop_cmd(source: str, n_frames: int | None, seconds: float | None, sample_m: int | None,
             only: str | None, effort: float, **o) -> None:
    """Make a seamless loop of the frames of SOURCE (shortest Hamiltonian cycle).

    \b
    Example: reseq loop sample:kenney-robot --seconds 4 -o walk.gif
    """
    from ..graph import loop
    from ..sequences import chain_loop, sample_cycle

    if n_frames is not None and seconds is not None:
        raise ReseqError("give --frames or --seconds, not both")
    only_list = [k.strip() for k in only.split(",")] if only else []
    if only is not None and (len(only_list) < 2 or any(not k for k in only_list)):
        raise ReseqError("--only needs at least two comma-separated frames, e.g. --only 0,3,5")
    _precheck(o, source)
    from .._util import check_frame_count

    if n_frames is not None or seconds is not None:
        n_out = n_frames if n_frames is not None else max(1, round(seconds * o["fps"]))
        check_frame_count(n_out, "the loop's length (--frames/--seconds)")
    if sample_m is not None:
        check_frame_count(sample_m, "--sample")
    run = _Run("loop", source, o)
    if n_frames is not None or seconds is not None:
        run.out_frames = lambda n: n_out
    elif sample_m is not None:
        run.out_frames = lambda n: sample_m
    resolved = run.load({"only": only_list}, solver=True)
    if only_list:
        keep = sorted({run.working(k, f"--only {name}")
                       for k, name in zip(resolved["only"], only_list, strict=True)})
        if len(keep) < 2:
            raise ReseqError("--only names fewer than 2 distinct frames")
        run.subset(np.array(keep), f"--only: looping over {len(keep)} of {run.n_loaded} frames")
    if o["remove_outliers"]:
        run.remove_outliers(o["outlier_k"], o["outlier_q"])
    t = time.perf_counter()
    cyc = loop(run.D, seed=o["seed"], effort=effort)
    cycle = _orient(run, np.asarray(cyc.order, dtype=int), closed=True)
    steps = run.steps(cycle, closed=True)
    run.notes.append(f"loop: cost {float(cyc.cost):.4g} over {len(cycle)} frames, closing step "
                     f"{float(steps[-1]):.4g}, solved in {time.perf_counter() - t:.1f} s")
    seq = cycle
    if sample_m is not None:
        seq = np.asarray(sample_cycle(cycle, run.D, sample_m), dtype=int)
        run.notes.append(f"sampled the loop uniformly into {len(seq)} frames")
    if n_frames is not None or seconds is not None:
        n = n_frames if n_frames is not None else max(1, round(seconds * o["fps"]))
        seq = np.asarray(chain_loop(seq, n), dtype=int)
        run.notes.append(f"chained to {len(seq)} frames ({len(seq) / o['fps']:.2f} s at "
                         f"{o['fps']:g} fps)")
    run.write(seq, closed=True, title=f"reseq loop {source}")


@main.command("inbetween")
@click.argument("source")
@click.option("--keys", help="Key-frames F1,F2,...: file names or 0-based frame numbers.")
@click.option("--mst-plot", type=click.Path(dir_okay=False),
              help="Write a 2-D picture of the minimum spanning tree (to choose key-frames).")
@_output_options(required=False)
@_frame_options
def inbetween_cmd(source: str, keys: str | None, mst_plot: str | None, **o) -> None:
    """Fill in the frames between key-frames along the minimum spanning tree.

    Without --keys, only --mst-plot is written: look at it, then choose the key-frames.

    \b
    Example: reseq inbetween sample:bunny --keys 0,40,20 -o inb.mp4 --mst-plot mst.png
    """
    from ..graph import inbetweens, minimum_spanning_tree
    from ..render import mst_plot as draw_mst

    key_list = [k.strip() for k in keys.split(",")] if keys else []
    if keys is not None and (len(key_list) < 2 or any(not k for k in key_list)):
        raise ReseqError("--keys needs at least two comma-separated frames, e.g. --keys 0,12,5")
    if not key_list and mst_plot is None:
        raise ReseqError("give --keys F1,F2,... (and -o), or --mst-plot to choose key-frames")
    if key_list and o["output"] is None:
        raise ReseqError("--keys needs -o/--output")
    if not key_list and o["output"] is not None:
        raise ReseqError("-o needs --keys F1,F2,...")
    _precheck(o, source, others=[Output(mst_plot, "--mst-plot")])
    run = _Run("inbetween", source, o)
    resolved = run.load({"keys": key_list})
    if o["remove_outliers"]:
        run.remove_outliers(o["outlier_k"], o["outlier_q"])
    kw = [run.working(k, f"key {name}") for k, name in zip(resolved["keys"], key_list,
                                                           strict=True)]
    for a, b in itertools.pairwise(kw):
        if a == b:
            raise ReseqError(f"two consecutive key-frames are the same frame "
                             f"({run.frames.labels[a]})")
    plot_written: list[tuple[Path | str, str]] = []
    if mst_plot:
        tree = minimum_spanning_tree(run.D)
        plot_written.append((draw_mst(mst_plot, tree, run.frames.array, run.frames.labels,
                                      keys=kw, force=o["force"],
                                      title=f"Minimum spanning tree of {source}"),
                             "minimum spanning tree"))
    if not kw:
        click.echo(f"reseq inbetween: {run.n_loaded} frames in from {source}")
        for note in run.notes:
            click.echo(f"  {note}")
        click.echo(f"  wrote {plot_written[0][0]}: choose key-frames there (numbers are frame "
                   "numbers), then run again with --keys")
        return
    res = inbetweens(run.D, kw)
    seq = np.asarray(res.path, dtype=int)
    cost = float(run.steps(seq, closed=False).sum())
    run.notes.append(f"in-betweens along the MST: cost {cost:.4g} over {len(seq)} frames")
    segs = []
    for (a, b), c in zip(itertools.pairwise(kw), res.counts, strict=False):
        segs.append(f"{run.frames.labels[a]} -> {run.frames.labels[b]}: {int(c)} in-betweens")
    run.notes.append("segments: " + "; ".join(segs))
    run.write(seq, closed=False, title=f"reseq inbetween {source}", more=plot_written)


@main.command("outliers")
@click.argument("source")
@click.option("--k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Neighbours in the score X_i (mean distance to the K nearest).")
@click.option("--quantile", type=Real(0, 1, min_open=True, max_open=True),
              default=0.9, show_default=True, help="Quantile of the fitted distribution = T.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write a histogram of the scores with the fit and T (PNG).")
@click.option("--sheet", type=click.Path(dir_okay=False),
              help="Write a contact sheet of the outlier frames (PNG).")
@_frame_options
def outliers_cmd(source: str, k: int, quantile: float, output: str | None, sheet: str | None,
                 **o) -> None:
    """Find frames that do not belong (paper section 4.3).

    X_i is frame i's mean distance to its K nearest neighbours; a generalized gamma
    distribution is fitted to the X_i and frames above its QUANTILE (T) are outliers.
    """
    from ..graph import outliers
    from ..render import check_outputs, contact_sheet, outlier_histogram

    check_outputs(others=[Output(output, "-o"), Output(sheet, "--sheet")], force=o["force"],
                  sources=[source])
    run = _Run("outliers", source, {**o, "output": output, "sheet": sheet})
    run.load()
    res = outliers(run.D, k=k, quantile=quantile)
    scores = np.asarray(res.scores, dtype=float)
    mask = np.asarray(res.mask, dtype=bool)
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(-scores[idx])]
    labels = run.frames.labels
    params = ", ".join(f"{float(p):.4g}" for p in res.params)
    click.echo(f"reseq outliers: {run.n_loaded} frames in from {source}, {len(idx)} outliers")
    for note in run.notes:
        click.echo(f"  {note}")
    click.echo(f"  T = {float(res.threshold):.4g} ({quantile:g} quantile of the generalized gamma "
               f"fit a, c, loc, scale = {params}; K = {k})")
    for i in idx:
        click.echo(f"  outlier: {labels[i]}  (frame {int(run.src[i])}, X = {scores[i]:.4g})")
    written = []
    if output:
        written.append(outlier_histogram(output, scores, res.params, float(res.threshold), mask,
                                         force=o["force"],
                                         title=f"Outlier scores of {source} (K = {k})"))
    if sheet:  # with no outliers, a sheet that says so (the file asked for is always written)
        written.append(contact_sheet(sheet, run.frames.array[idx],
                                     [f"{labels[i]} X={scores[i]:.3g}" for i in idx],
                                     n=max(len(idx), 1), title=f"{len(idx)} outliers of {source}",
                                     force=o["force"]))
    for p in written:
        click.echo(f"  wrote {p}")
