"""``reseq evaluate CORPUS`` (the reconstruction experiment) and ``reseq dae train`` (its DAE)."""

from __future__ import annotations

import time

import click

from . import main
from .sequence import SEED, Real

__all__ = ["dae_group", "evaluate_cmd"]


def _metric_list(text: str) -> list[str]:
    from ..errors import ReseqError
    from ..evaluate.protocol import METRICS

    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise ReseqError("--metrics is empty")
    if names == ["all"]:
        return list(METRICS)
    for m in names:
        if m not in METRICS:
            raise ReseqError(f"unknown metric {m!r}; choose from {', '.join(METRICS)} or all")
    return names


@main.command("evaluate")
@click.argument("corpus", type=click.Path())
@click.option("-k", "--every", default=3, show_default=True, type=click.IntRange(min=1),
              help="Keep every K-th frame of each clip.")
@click.option("--metrics", default="all", show_default=True,
              help="Comma-separated: l2,dae,lle,isomap,cosine-alex,cosine-vgg,lpips-alex,"
                   "lpips-vgg,greedy-lpips,ssim-2opt,lpips-alex-motion (or all).")
@click.option("--seed", default=0, show_default=True, type=int, help="Shuffle seed.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=16),
              help="Working long edge of the frames in pixels.")
@click.option("--dae", "dae_path", type=click.Path(), default=None,
              help="Trained DAE checkpoint (reseq dae train); default: train one on the corpus' "
                   "loops + sample:kenney + bunny frames 131+ (cached).")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Parallel processes for the LLE/Isomap sweeps' path solves.")
@click.option("-o", "--out", required=True, type=click.Path(), help="Report folder.")
@click.option("--force", is_flag=True, help="Overwrite an existing report.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def evaluate_cmd(corpus: str, every: int, metrics: str, seed: int, size: int,
                 dae_path: str | None, jobs: int, out: str, force: bool, quiet: bool) -> None:
    """Shuffle each non-cyclic clip of CORPUS, reconstruct it with every metric, score it.

    CORPUS holds one folder of frames per clip in true order and optionally manifest.csv
    (clip, style, cyclic yes/no). Writes results.csv, sweep.csv, timings.csv, summary.md and
    the figures into OUT.
    """
    from pathlib import Path

    from .._util import Output, check_output_paths
    from ..evaluate.protocol import evaluate_corpus, read_corpus
    from ..evaluate.report import REPORT_FILES, write_report

    _ranges(seed=(seed, 0, 2**32 - 1), size=(size, 16, 4096))
    names = _metric_list(metrics)
    read_corpus(corpus)  # fail fast on a bad corpus
    # and on the report folder (new, empty or an earlier report only), before any work
    check_output_paths([Output(out, "-o", folder=True, names=REPORT_FILES)],
                       sources=[corpus, dae_path], force=force)
    for name in REPORT_FILES:
        if (Path(out) / name).exists() and not force:
            from ..errors import ReseqError

            raise ReseqError(f"{Path(out) / name} already exists; use --force to overwrite it")
    if dae_path and Path(dae_path).is_dir():
        from ..errors import ReseqError

        raise ReseqError(f"--dae {dae_path} is a folder; give a DAE checkpoint file (.pt)")
    model, dae_note = None, None
    if "dae" in names:
        from ..evaluate import dae

        if dae_path:
            model, dae_note = dae.load_dae(dae_path), f"checkpoint `{dae_path}`"
        else:
            t0 = time.perf_counter()
            model, path = dae.default_dae(corpus, show_progress=not quiet,
                                          log=None if quiet else click.echo)
            _, described = dae.training_set(corpus)
            dae_note = (f"default checkpoint `{path.name}` ({dae.DAEConfig()}), trained on "
                        + ", ".join(described))
            if not quiet:
                click.echo(f"DAE ready in {time.perf_counter() - t0:.0f} s: {path}")
    t0 = time.perf_counter()
    ev = evaluate_corpus(corpus, every=every, metrics=names, seed=seed, size=size,
                         dae_model=model, show_progress=not quiet, n_jobs=jobs)
    if dae_note:
        ev.config["dae"] = dae_note
    write_report(ev, out, force=force)
    click.echo(f"{len(ev.results)} results for {len(ev.config['clips'])} clips in "
               f"{time.perf_counter() - t0:.0f} s -> {Path(out) / 'summary.md'}")


def _ranges(**values: tuple[int, int, int]) -> None:
    """Options out of range (``--seed -1``) as one line, like click's own range checks."""
    from ..errors import ReseqError

    for name, (value, lo, hi) in values.items():
        if not lo <= value <= hi:
            raise ReseqError(f"Invalid value for '--{name}': {value} is not in the range "
                             f"{lo}<=x<={hi}.")


def _identity(path: str) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of a file, None when absent: tells whether it was rewritten."""
    import os

    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@main.group("dae")
def dae_group() -> None:
    """The denoising autoencoder baseline of the evaluation (paper section 5.1)."""


@dae_group.command("train")
@click.argument("sources", nargs=-1)
@click.option("-o", "--out", required=True, type=click.Path(), help="Checkpoint file (.pt).")
@click.option("--corpus", type=click.Path(), default=None,
              help="Also train on the default set for CORPUS: its loops, sample:kenney and the "
                   "bunny frames 131+ (what `reseq evaluate` uses).")
@click.option("--steps", default=200, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=1e-3, show_default=True, type=Real(0, min_open=True))
@click.option("--noise", default=0.1, show_default=True, type=Real(min=0),
              help="Std of the Gaussian noise added to the input.")
@click.option("--checkpoint-every", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--size", default=320, show_default=True, type=click.IntRange(16, 4096),
              help="Long edge the frames are loaded at (then scaled to 320x180).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--resume", is_flag=True, help="Continue an existing checkpoint.")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
@click.option("-q", "--quiet", is_flag=True)
def dae_train_cmd(sources: tuple[str, ...], out: str, corpus: str | None, steps: int,
                  batch_size: int, lr: float, noise: float, checkpoint_every: int, size: int,
                  seed: int, resume: bool, force: bool, quiet: bool) -> None:
    """Train the DAE on the frames of SOURCES (folders, videos, sample:NAME) and write OUT."""
    from .._util import Output, check_checkpoint_name, check_output_paths
    from ..errors import ReseqError
    from ..evaluate import dae
    from ..frames import load_frames

    if not sources and not corpus:
        raise ReseqError("give frame SOURCES to train on, or --corpus CORPUS for the default set")
    check_output_paths([Output(out, "-o")], sources=[*sources, corpus], force=force or resume)
    check_checkpoint_name(out)
    arrays = [load_frames(s, size=size, progress=not quiet).array for s in sources]
    if corpus:
        arrays += dae.training_set(corpus, size=size)[0]
    config = dae.DAEConfig(steps=steps, batch_size=batch_size, lr=lr, noise_std=noise,
                           checkpoint_every=checkpoint_every, seed=seed)
    t0 = time.perf_counter()
    log = None if quiet else click.echo  # stdout: stderr is for problems
    before = _identity(out)
    path = dae.train_dae(arrays, out, config, resume=resume, force=force,
                         show_progress=not quiet, log=log)
    if before is not None and _identity(out) == before:  # nothing trained, nothing written
        raise ReseqError(f"{out} is already trained for {steps} steps or more: nothing written; "
                         "give a larger --steps to continue it")
    click.echo(f"trained on {sum(len(a) for a in arrays)} frames, {steps} steps, "
               f"{time.perf_counter() - t0:.0f} s -> {path}")
