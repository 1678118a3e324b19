"""``reseq vae ...``: train a VAE on frames, interpolate between frames, demo, latent map."""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from .._util import (
    Output,
    check_checkpoint_name,
    check_frame_count,
    check_memory,
    check_output_paths,
)
from ..errors import ReseqError
from . import main
from .sequence import SEED, Real

__all__ = ["vae"]


def _read_image(path: str | os.PathLike) -> np.ndarray:
    """One still image as (H, W, 3) uint8, transparency composited onto white."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ReseqError(f"image not found: {path}")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                rgba = im.convert("RGBA")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ReseqError(f"cannot read image {path}: too many pixels (a decompression "
                         "bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ReseqError(f"cannot read image {path}: {type(exc).__name__}") from None
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))


def _long_edge_size(hw: tuple[int, ...], size: int | None,
                    upscale: bool = False) -> tuple[int, int]:
    """(height, width) with the long edge at ``size`` (never larger unless ``upscale``)."""
    h, w = hw[:2]
    if not size or (size >= max(h, w) and not upscale):
        return h, w
    s = size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _fit_long_edge(image: np.ndarray, size: int | None, upscale: bool = False) -> np.ndarray:
    from PIL import Image

    hw = _long_edge_size(image.shape, size, upscale)
    if hw == image.shape[:2]:
        return image
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.LANCZOS))


def _set_threads() -> None:
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))


def _write(out: str, frames: np.ndarray, labels: list[str], synthetic: np.ndarray, fps: float,
           force: bool, index: str | None, sheet: str | None, loop: bool = False) -> list[Path]:
    from ..render import contact_sheet, write_sequence
    from ..synth.gaps import consecutive_lpips

    extra = [{"synthetic": bool(s)} for s in synthetic]
    # LPIPS (alex) from each frame to the next, as the other commands' indexes report
    steps = consecutive_lpips(frames, "alex", loop=loop)
    dists: list[float | None] = [float(d) for d in steps] + [None] * (len(frames) - len(steps))
    written = write_sequence(out, frames, labels, dists, fps=fps, force=force, index=index,
                             extra=extra, check=False)  # checked before the work
    if sheet:
        written.append(contact_sheet(sheet, frames, labels, n=min(len(frames), 24), force=force,
                                     title=f"{int(synthetic.sum())} synthetic of {len(frames)}"))
    return written


@main.group()
def vae() -> None:
    """Synthesize in-between frames with a variational autoencoder (train, interpolate, ...)."""


@vae.command("train")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint file to write (and to resume from).")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1, 100_000),
              help="Total training epochs.")
@click.option("--size", default=64, show_default=True, type=click.IntRange(16, 256),
              help="Square image side (power of two); 128 for sharp frames at 128 px and up.")
@click.option("--latent", default=128, show_default=True, type=click.IntRange(2, 4096),
              help="Latent dimensions.")
@click.option("--batch", default=32, show_default=True, type=click.IntRange(1, 65536),
              help="Mini-batch size.")
@click.option("--lr", default=1e-3, show_default=True, type=Real(0, min_open=True),
              help="Adam learning rate.")
@click.option("--beta", default=0.01, show_default=True, type=Real(min=0),
              help="Weight of the KL term.")
@click.option("--loss", "recon", type=click.Choice(["bce", "mse"]), default="mse",
              show_default=True, help="Reconstruction term (summed per image).")
@click.option("--perceptual", default=0.0, show_default=True, type=Real(min=0),
              help="Weight of an LPIPS (AlexNet) reconstruction term; 0 = off.")
@click.option("--grid", default=0, show_default=True, type=click.IntRange(0, 128),
              help="Spatial latent: LATENT channels on a GRID x GRID map (0 = a vector).")
@click.option("--from", "init", type=click.Path(dir_okay=False),
              help="Fine-tune this checkpoint on the frames (its size, latent and grid).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--resume", is_flag=True, help="Continue training the checkpoint at -o.")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
def train_cmd(folders, output, epochs, size, latent, batch, lr, beta, recon, perceptual, grid,
              init, seed, resume, force):
    """Train a VAE on the frames of FOLDER(s); each folder's name is a class label."""
    from ..synth.vae import VAEConfig, load_model, load_training_frames, train_vae

    _set_threads()
    if init and resume:
        raise ReseqError("give either --from (fine-tune another model) or --resume, not both")
    if resume and not Path(output).is_file():
        raise ReseqError(f"cannot resume: {output} does not exist")
    if os.fspath(output).strip() and Path(output).exists() and not (resume or force):
        raise ReseqError(f"{output} already exists; use --force to overwrite it "
                         "or --resume to continue training it")
    check_output_paths([Output(output, "-o")], sources=[*folders, init], force=force or resume)
    check_checkpoint_name(output)
    base = load_model(init) if init else None
    if base is not None:
        size, latent, grid = base.config.size, base.config.latent, base.config.grid
    VAEConfig(size=size, latent=latent, beta=beta, recon=recon, perceptual=perceptual,
              grid=grid)  # validate
    images, _labels, classes = load_training_frames(list(folders), size=size)
    click.echo(f"training on {len(images)} frames of {len(classes)} class(es) at {size}x{size}, "
               f"latent {latent}{f' x {grid}x{grid}' if grid else ''}, {epochs} epochs"
               f"{f', fine-tuning {init}' if init else ''}")  # stdout: stderr is for problems
    result = train_vae(images, classes=classes, size=size, latent=latent, epochs=epochs,
                       batch=batch, lr=lr, beta=beta, recon=recon, perceptual=perceptual,
                       grid=grid, seed=seed, init=base,
                       checkpoint=output, resume=resume, force=force)
    h = result.history
    if not result.epochs_run:  # nothing was trained or written: not a success
        raise ReseqError(f"{output} is already trained for {epochs} epochs or more: nothing "
                         "written; give a larger --epochs to continue it")
    first = f"{h[0]:.1f} -> " if len(h) > 1 else ""
    click.echo(f"wrote {output}: {len(h)} epochs, loss per image {first}{h[-1]:.1f}")


@vae.command("interpolate")
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--through", help="Comma-separated images to chain: A,B,C,...")
@click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
              help="VAE checkpoint written by `reseq vae train`.")
@click.option("--steps", default=10, show_default=True, type=click.IntRange(0),
              help="Generated frames per pair.")
@click.option("--method", type=click.Choice(["slerp", "lerp"]), default="slerp", show_default=True)
@click.option("--render", type=click.Choice(["composite", "warp", "residual", "decode"]),
              default="composite", show_default=True,
              help="composite: real pixels placed by the decoded in-between (sharp); warp: the "
                   "real frames warped by optical flow towards the decoded in-between (needs "
                   "reseq[flow]); residual: "
                   "decoded frame plus the endpoints' reconstruction errors; decode: the decoded "
                   "frame itself (blurry).")
@click.option("-o", "--output", required=True,
              help="Output .mp4, .gif or folder/ (PNG sequence).")
@click.option("--fps", default=5.0, show_default=True, type=Real(0, 1000, min_open=True))
@click.option("--size", default=256, show_default=True, type=click.IntRange(1),
              help="Long edge of the output frames (the first image's aspect ratio; at most "
                   "its own size unless --upscale).")
@click.option("--upscale", is_flag=True, help="Scale a smaller first image up to --size.")
@click.option("--index", help="Also write a JSON (or .csv) index marking synthetic frames.")
@click.option("--sheet", help="Also write a contact sheet (.png, .jpg, .webp or .tif).")
@click.option("--force", is_flag=True)
def interpolate_cmd(images, through, model, steps, method, render, output, fps, size, upscale,
                    index, sheet, force):
    """Generate in-betweens from image A to image B (or --through A,B,C,...).

    The output holds the real A, STEPS synthesized frames, then the real B (and so on). Each
    in-between is decoded from the slerp of A's and B's latent codes; by default (--render
    composite) its pixels are then taken from A and B wherever the decoded frame resembles
    their reconstructions (sharp, where the decoded frame itself is blurry).
    """
    from ..synth.interpolate import through as chain
    from ..synth.vae import load_model

    paths = list(images)
    if through:
        if paths:
            raise ReseqError("give either two images A B or --through A,B,C, not both")
        paths = [p.strip() for p in through.split(",") if p.strip()]
    if len(paths) < 2 or (not through and len(paths) != 2):
        raise ReseqError("need two images A B (or --through with at least two)")
    from ..render import check_outputs

    check_outputs(output, index=index, others=[Output(sheet, "--sheet")], force=force, fps=fps,
                  sources=[*paths, model])
    n_out = (len(paths) - 1) * (steps + 1) + 1
    check_frame_count(n_out, "the interpolation (--steps)")
    imgs = [_read_image(p) for p in paths]
    h, w = _long_edge_size(imgs[0].shape, size, upscale)
    check_memory(n_out * h * w * 3 * 4, f"{n_out:,} frames at {w}x{h}")
    first = _fit_long_edge(imgs[0], size, upscale)
    _set_threads()
    net = load_model(model)
    frames, synthetic = chain(net, [first, *imgs[1:]], steps, method=method, render=render)
    labels: list[str] = []
    real_i = 0
    for s in synthetic:
        if not s:
            labels.append(Path(paths[real_i]).name)
            real_i += 1
        else:
            labels.append(f"{method} {Path(paths[real_i - 1]).name}>{Path(paths[real_i]).name}")
    written = _write(output, frames, labels, synthetic, fps, force, index, sheet)
    click.echo(f"wrote {', '.join(map(str, written))}: {len(frames)} frames "
               f"({int(synthetic.sum())} synthetic)")


@vae.command("demo")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
              help="VAE checkpoint written by `reseq vae train`.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for one animation per class.")
@click.option("--images", "n_images", default=7, show_default=True, type=click.IntRange(2),
              help="Images per class to cycle through.")
@click.option("--steps", default=10, show_default=True, type=click.IntRange(0),
              help="Generated frames per pair.")
@click.option("--fps", default=5.0, show_default=True, type=Real(0, 1000, min_open=True))
@click.option("--format", "fmt", type=click.Choice(["gif", "mp4"]), default="gif",
              show_default=True)
@click.option("--size", default=128, show_default=True, type=click.IntRange(1),
              help="Long edge of the output frames (at most the frames' own size).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Which images are picked.")
@click.option("--force", is_flag=True)
def demo_cmd(folders, model, output, n_images, steps, fps, fmt, size, seed, force):
    """For each class FOLDER, cycle through interpolations among 7 of its images.

    Picks N_IMAGES frames of the folder at random (seeded, kept in their folder order) and
    writes CLASS.gif (or .mp4): img1 > ... > img7 > img1, STEPS decoded frames per pair.
    """
    from .._util import progress
    from ..frames import load_frames
    from ..render import check_outputs
    from ..synth.interpolate import through as chain
    from ..synth.vae import load_model

    out_dir = Path(output)
    targets = [(Path(f), out_dir / f"{Path(f).resolve().name}.{fmt}") for f in folders]
    if len({t for _, t in targets}) != len(targets):
        raise ReseqError("two class folders have the same name: their animations would be "
                         "written to the same file")
    check_output_paths([Output(output, "-o", folder=True,
                               names=tuple(t.name for _, t in targets))],
                       sources=[*folders, model], force=force)
    for _, t in targets:
        check_outputs(t, force=force, fps=fps)
    check_frame_count(n_images * (steps + 1), "each animation (--images x --steps)")
    _set_threads()
    net = load_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for folder, target in progress(targets, desc="demo", total=len(targets), unit="class"):
        fr = load_frames(folder, size=size, progress=False, upscale=False)
        k = min(n_images, len(fr.array))
        if k < 2:
            raise ReseqError(f"{folder} has fewer than two frames")
        pick = np.sort(rng.choice(len(fr.array), size=k, replace=False))
        seq = [fr.array[i] for i in pick] + [fr.array[pick[0]]]
        frames, synthetic = chain(net, seq, steps)
        names = [fr.labels[i] for i in pick] + [fr.labels[pick[0]]]
        labels, r = [], 0
        for s in synthetic:
            labels.append(f"{names[r - 1]}>{names[r]}" if s else names[r])
            r += 0 if s else 1
        _write(str(target), frames[:-1], labels[:-1], synthetic[:-1], fps, force, None, None,
               loop=True)
        click.echo(f"wrote {target}: {len(frames) - 1} frames through {k} images")


@vae.command("map")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
              help="VAE checkpoint written by `reseq vae train`.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The map picture (.png, .jpg, .webp or .tif).")
@click.option("--thumbnails", is_flag=True, help="Draw each frame's thumbnail at its point.")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--force", is_flag=True)
def map_cmd(folders, model, output, thumbnails, seed, force):
    """t-SNE map of the latent means of the frames in FOLDER(s), coloured by folder (class)."""
    from ..render import check_outputs
    from ..synth.latent_map import latent_map
    from ..synth.vae import load_model, load_training_frames

    check_outputs(others=[Output(output, "-o")], sources=[*folders, model], force=force)
    _set_threads()
    net = load_model(model)
    images, labels, classes = load_training_frames(list(folders), size=net.config.size)
    latent_map(net, images, labels, output, thumbnails=thumbnails, seed=seed, force=force)
    click.echo(f"wrote {output}: {len(images)} frames of {len(classes)} class(es)")
