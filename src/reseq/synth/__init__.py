"""Synthesis: new in-between frames by interpolating in a VAE's latent space.

Resequencing can only reuse frames that exist. Where the perceptual manifold has a gap (a long
MST edge between key-frames, a big jump in a path or a loop) the animation stutters; the paper
names this as its main limitation. Here we fill such gaps with frames that never existed:

1. :func:`train_vae` fits a small convolutional variational autoencoder (:class:`VAE`) to the
   frames of one folder, or of several folders whose names are class labels
   (``reseq vae train``). Frames are squashed to ``size x size`` (default 64); the loss is the
   summed binary cross-entropy plus ``beta`` (default 1) times the KL divergence.
2. :func:`interpolate` encodes two real frames to their latent means ``z0``, ``z1``, walks
   between them with :func:`slerp` (spherical; :func:`lerp` on request) and decodes the
   in-betweens, resized back to the frames' aspect ratio; :func:`through` chains several
   frames. The real frames stay at the ends (``reseq vae interpolate``, ``reseq vae demo``).
3. :func:`fill_gaps` inserts such in-betweens into every step of a sequence longer than a
   threshold (:func:`default_gap_threshold`: a high quantile of the nearest-neighbour
   distances); ``--synthesize`` on ``order``, ``loop`` and ``inbetween`` uses it.
4. :func:`latent_map` draws a t-SNE of the latent means coloured by class (``reseq vae map``).

What to expect (``benchmarks/synthesis.py``: leave-out in-betweening on the 22 dev clips, one
VAE trained 100 epochs on their frames minus the held-out ones, LPIPS at a 128 px working size):
the VAE blurs. Its decoded in-betweens are about 0.35 LPIPS from the truth, while a pixel
cross-fade of frames 2 - 4 apart is 0.05 - 0.09 away, so on these smooth clips plain VAE
in-betweens (slerp or lerp alike) lose to the cross-fade in every case; the cross-fade ghosts,
but little moves in 4 frames, and repeating the nearer frame scores better still. The
``residual`` option of :func:`interpolate` (add back the two endpoints' reconstruction errors,
cross-faded) keeps the real frames' detail and uses the VAE only for the change between them:
it wins about half the cases against the cross-fade with AlexNet LPIPS (a fifth with VGG), and
loses clearly on camera pans (``nat_bikes_*``). Unlike plain VAE frames it shrinks the largest
step of a sequence, so :func:`fill_gaps` uses it by default. An optional LPIPS term in the loss
(``perceptual=``) is measured in :mod:`reseq.synth.vae`.

>>> import numpy as np
>>> from reseq.synth import slerp
>>> np.linalg.norm(slerp([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], 0.3)).round(6)
np.float64(1.0)
"""

from __future__ import annotations

from .gaps import (
    GapFilling,
    consecutive_lpips,
    default_gap_threshold,
    fill_gaps,
    gap_counts,
    synthesize_gaps,
)
from .interpolate import crossfade, interpolate, lerp, slerp, through
from .latent_map import latent_map, plot_latent_map, tsne_2d
from .vae import (
    VAE,
    TrainResult,
    VAEConfig,
    decode,
    encode,
    load_model,
    load_training_frames,
    save_checkpoint,
    train_vae,
    vae_loss,
)

__all__ = [
    "VAE",
    "GapFilling",
    "TrainResult",
    "VAEConfig",
    "consecutive_lpips",
    "crossfade",
    "decode",
    "default_gap_threshold",
    "encode",
    "fill_gaps",
    "gap_counts",
    "interpolate",
    "latent_map",
    "lerp",
    "load_model",
    "load_training_frames",
    "plot_latent_map",
    "save_checkpoint",
    "slerp",
    "synthesize_gaps",
    "through",
    "train_vae",
    "tsne_2d",
    "vae_loss",
]
