"""A 2-D map of the VAE's latent space: t-SNE of the latent means, coloured by class.

Used to see whether the model separates the classes (training folders) and where each clip's
frames lie relative to the others; clusters that overlap are where interpolation between
classes would morph one into the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._util import atomic_path
from ..errors import ReseqError

if TYPE_CHECKING:
    from .vae import VAE

__all__ = ["latent_map", "plot_latent_map", "tsne_2d"]


def tsne_2d(z: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """t-SNE (scikit-learn, PCA init, seeded) of ``(N, d)`` codes to ``(N, 2)``.

    The perplexity is lowered to ``(N - 1) / 3`` for small N.

    >>> xy = tsne_2d(np.random.default_rng(0).normal(size=(12, 5)))
    >>> xy.shape
    (12, 2)
    """
    from sklearn.manifold import TSNE

    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 3:
        raise ReseqError(f"need at least 3 latent codes for a map, got {len(z)}")
    perplexity = float(min(perplexity, max(1.0, (len(z) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(z)


def plot_latent_map(xy: np.ndarray, labels: list[str], path: str | os.PathLike,
                    thumbnails: np.ndarray | None = None, title: str = "VAE latent space (t-SNE)",
                    force: bool = False, thumb_px: int = 28, max_thumbnails: int = 60) -> Path:
    """Scatter ``xy`` coloured by ``labels`` (legend), optionally with image thumbnails.

    At most ``max_thumbnails`` thumbnails are drawn, spread evenly over each class's frames.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    classes = sorted(set(labels))
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    for k, name in enumerate(classes):
        sel = np.array([lab == name for lab in labels])
        ax.scatter(xy[sel, 0], xy[sel, 1], s=14, color=cmap(k % cmap.N), label=name, alpha=0.85)
    if thumbnails is not None:
        for i in _thumbnail_picks(labels, max_thumbnails):
            (x, y), im, lab = xy[i], thumbnails[i], labels[i]
            h, w = im.shape[:2]
            zoom = thumb_px / max(h, w)
            box = AnnotationBbox(OffsetImage(im, zoom=zoom), (x, y), frameon=True, pad=0.1,
                                 bboxprops={"edgecolor": cmap(classes.index(lab) % cmap.N)})
            ax.add_artist(box)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=1 + len(classes) // 12)
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return Path(path)


def _thumbnail_picks(labels: list[str], cap: int) -> list[int]:
    """Indices of up to ``cap`` frames, shared fairly among the classes, evenly spaced in each.

    >>> _thumbnail_picks(["a"] * 10 + ["b"] * 2, 6)
    [0, 4, 9, 10, 11]
    """
    classes = list(dict.fromkeys(labels))
    per = max(1, cap // max(1, len(classes)))
    picks: list[int] = []
    for name in classes:
        idx = [i for i, lab in enumerate(labels) if lab == name]
        take = np.unique(np.linspace(0, len(idx) - 1, min(per, len(idx))).round().astype(int))
        picks += [idx[k] for k in take]
    return picks


def latent_map(model: VAE, images: np.ndarray, labels: list[str], path: str | os.PathLike,
               thumbnails: bool = False, seed: int = 0, force: bool = False) -> np.ndarray:
    """Encode ``images``, t-SNE their latent means and plot to ``path``; returns the ``(N, 2)``."""
    from .vae import encode

    if len(images) != len(labels):
        raise ReseqError(f"{len(images)} images but {len(labels)} labels")
    xy = tsne_2d(encode(model, images), seed=seed)
    plot_latent_map(xy, list(labels), path, thumbnails=images if thumbnails else None,
                    force=force)
    return xy
