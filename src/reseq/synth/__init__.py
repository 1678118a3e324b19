"""Synthesis: new in-between frames by interpolating in a VAE's latent space.

Resequencing can only reuse frames that exist. Where the perceptual manifold has a gap (a long
MST edge between key-frames, a big jump in a path or a loop) the animation stutters; the paper
names this as its main limitation. Here we fill such gaps with frames that never existed:

1. :func:`train_vae` fits a small convolutional variational autoencoder (:class:`VAE`) to the
   frames of one folder, or of several folders whose names are class labels
   (``reseq vae train``), or fine-tunes one on a clip's own frames (``--from``). Frames are
   squashed to ``size x size`` (default 64; 128 for 128 px output); the loss is the summed
   squared error plus ``beta`` (default 0.01) times the KL divergence.
2. :func:`interpolate` encodes two real frames to their latent means ``z0``, ``z1``, walks
   between them with :func:`slerp` (spherical; :func:`lerp` on request) and decodes the
   in-betweens, resized back to the frames' aspect ratio; :func:`through` chains several
   frames. The real frames stay at the ends (``reseq vae interpolate``, ``reseq vae demo``).
3. :func:`fill_gaps` inserts such in-betweens into every step of a sequence longer than a
   threshold (:func:`default_gap_threshold`: a high quantile of the nearest-neighbour
   distances); ``--synthesize`` on ``order``, ``loop`` and ``inbetween`` uses it.
4. :func:`latent_map` draws a t-SNE of the latent means coloured by class (``reseq vae map``).

What to expect (``benchmarks/synthesis.py``: leave-out in-betweening on the 22 dev clips, 40
gap-2 and 40 gap-4 holes, LPIPS at a 128 px working size; the held-out frames are never trained
on): the VAE blurs. With one 128 px all-clip model (MSE + 0.01 KL, latent 128, 20 epochs),
fine-tuned per clip on the clip's own frames (100 steps of 8 frames), decoded gap-4 in-betweens
are 0.205 (AlexNet) / 0.272 (VGG) from the truth, against 0.354 / 0.355 for the earlier single
64 px BCE model; a pixel cross-fade is 0.059 / 0.087 away and repeating the nearer frame
0.055 / 0.078, so plain VAE in-betweens (slerp or lerp alike) still lose to the cross-fade in
every case, at gap 2 as at gap 4. The cross-fade ghosts, but little moves in 4 frames; the
VAE reconstructs its own training frames at about 0.05 - 0.12 and decodes a latent half-way
between two frames to a soft blend, not to the motion (:mod:`reseq.synth.vae` has the
measurements of what was tried). The ``residual`` option of :func:`interpolate` (add back the
two endpoints' reconstruction errors, cross-faded) keeps the real frames' detail and uses the
VAE only for the change between them: it wins about half the cases against the cross-fade with
AlexNet LPIPS (48% at gap 4) and few with VGG (12%), and loses clearly on camera pans
(``nat_bikes_*``). Unlike plain VAE frames it shrinks the largest step of a sequence, so
:func:`fill_gaps` uses it by default.

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
