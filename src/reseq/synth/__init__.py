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
   in-betweens ``D(z_t)``; :func:`through` chains several frames, and the real frames stay at
   the ends (``reseq vae interpolate``, ``reseq vae demo``). Decoded frames are blurry, so by
   default (``render="composite"``) they are not shown themselves: each pixel of an in-between
   is taken from the real endpoints, mixed by which endpoint's reconstruction the decoded
   in-between resembles there (:func:`~reseq.synth.interpolate.composite_weights`; where
   neither does, the cross-fade's ``1 - t``). ``render="residual"`` adds the endpoints'
   cross-faded reconstruction errors to ``D(z_t)`` instead, ``render="decode"`` shows it bare.
3. :func:`fill_gaps` inserts such in-betweens into every step of a sequence longer than a
   threshold (:func:`default_gap_threshold`: a high quantile of the nearest-neighbour
   distances); ``--synthesize`` on ``order``, ``loop`` and ``inbetween`` uses it.
4. :func:`latent_map` draws a t-SNE of the latent means coloured by class (``reseq vae map``).

What to expect -- ``benchmarks/synthesis.py``: leave-out in-betweening on the 22 dev clips (hold
out the middle frame of a triple, gap 2, or the middle three of a quintuple, gap 4; 40 holes
each), mean LPIPS of the synthesized frames to the true ones at a 128 px working size, and in
brackets the share of holes where a method beats the cross-fade. The VAE is one 128 px model of
all clips (MSE + 0.01 KL, latent 128, 20 epochs), fine-tuned per clip on the clip's own frames
minus its held-out ones (100 steps of 8); held-out frames are never trained on. All methods get
the same two outer frames. Command: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/synthesis.py
--no-progress`` (models cached; about 6 minutes)::

    gap/net   slerp        lerp         slerp+resid. slerp+COMP.  comp. no path cross-fade nearest
    2 alex    0.199 (0%)   0.200 (0%)   0.046 (57%)  0.046 (48%)  0.046 (0%)    0.046      0.044 (48%)
    4 alex    0.205 (0%)   0.206 (0%)   0.059 (65%)  0.057 (80%)  0.057 (82%)   0.059      0.055 (60%)
    2 vgg     0.270 (0%)   0.271 (0%)   0.073 (32%)  0.066 (60%)  0.067 (0%)    0.067      0.065 (42%)
    4 vgg     0.272 (0%)   0.272 (0%)   0.091 (12%)  0.081 (92%)  0.082 (98%)   0.087      0.078 (75%)

    gap/net   slerp+warp   warp no path flow, no VAE | bounds: oracle+comp oracle+warp oracle-flow
    2 alex    0.051 (12%)  0.052 (10%)  0.045 (42%)  |         0.044 (62%) 0.048 (25%) 0.029 (62%)
    4 alex    0.062 (30%)  0.062 (30%)  0.060 (42%)  |         0.054 (85%) 0.058 (35%) 0.040 (80%)
    2 vgg     0.066 (30%)  0.069 (30%)  0.058 (65%)  |         0.064 (82%) 0.063 (40%) 0.038 (80%)
    4 vgg     0.082 (62%)  0.083 (65%)  0.079 (60%)  |         0.080 (95%) 0.078 (60%) 0.052 (90%)

Where the VAE loses: decoded in-betweens themselves (slerp or lerp alike) are blurred and lose
to the cross-fade in every case. The composite default beats the cross-fade in 80% (AlexNet) and
92% (VGG) of the gap-4 holes -- 81% and 88% on the 15 clips that played no part in choosing it
(its two constants were picked on ``cart_synfig_eye_open``, ``cyc_kenney_robot_walk``,
``cyc_kivy_cube``, ``nat_bikes_b``, ``nat_city_a``, ``px_pingus_bomber``, ``r3d_earth_a``) --
and 48% / 60% at gap 2; but it does not beat simply repeating the nearer frame (it wins 50% /
45% of the gap-4 holes against it, and its means are higher). The ablation ("comp. no path":
the same weights computed against a cross-fade of the two reconstructions instead of the
decoded slerp in-between) shows where its gap-4 win comes from: from compositing the sharp real
frames rather than ghosting them, not from the latent path -- which decides only where the time
prior is silent, at the middle frame of gap 2 (where the ablation is just the cross-fade).
Tried on the seven clips above and not adopted: composite weights without the time prior
(worse), or thresholded to 0/1 (lower gap-4 means, fewer wins). :mod:`reseq.synth.vae` has
what was tried for sharper decoded frames.

Per-hole test-time fine-tuning (the ``adapt-`` columns; ``--methods all``, 34 minutes in all on
one core): for each hole a copy of the clip's model is fitted to the two outer frames alone --
200 Adam steps (lr 1e-3, L1) on the decoder with the encoder frozen (``adapt``), or on the
decoder and the two codes, initialised at the encoder means (``adapt-z``, codes at lr 1e-2) --
then the slerp is decoded (``slerp``), composited as the default does (``+comp``), or
composited without the path (``no path``: the adapted reconstructions cross-faded as the
guide). 9.3 s per hole on one core, seeded and deterministic::

    gap/net   adapt slerp  adapt+comp   adapt no path  adapt-z slerp adapt-z+comp adapt-z no path
    2 alex    0.076 (5%)   0.052 (55%)  0.046 (0%)     0.076 (2%)    0.052 (40%)  0.046 (0%)
    4 alex    0.089 (8%)   0.055 (70%)  0.056 (72%)    0.087 (10%)   0.055 (70%)  0.056 (72%)
    2 vgg     0.110 (0%)   0.069 (42%)  0.067 (0%)     0.111 (0%)    0.069 (40%)  0.067 (0%)
    4 vgg     0.128 (2%)   0.079 (90%)  0.080 (98%)    0.126 (2%)    0.079 (90%)  0.080 (98%)

It sharpens the decoded in-betweens a lot (gap 4: 0.205 -> 0.089 AlexNet, 0.272 -> 0.128 VGG;
better than the plain slerp in every hole) and they still lose to the cross-fade in 90 - 98%
of the holes: the endpoints come out nearly exact, the half-way code still decodes to a blend.
Composited, the gap-4 means drop by 0.002 below the default's (0.055 / 0.079) but fewer holes
are won (70% / 90%), its own no-path ablation does as well (0.056 / 0.080; head to head the path
wins 48% / 42% of the gap-4 holes) -- the sharper reconstructions are better evidence for
placing the real pixels, not motion -- and at gap 2 it is worse than the cross-fade (0.052
against 0.046 AlexNet). Free codes change nothing (0.002 at most). A pilot on the seven clips
above (one gap-4 hole each; cross-fade 0.105 / 0.140) found no better setting: 400 steps
decode the in-betweens at 0.129 / 0.179 instead of 0.135 / 0.180 while the endpoints reach
0.028 / 0.049; encoder and decoder together cost 20 s per hole and decode worse (0.190 /
0.256); an AlexNet LPIPS term in the loss fits AlexNet, not VGG (100 steps at lr 3e-4, weight
1: endpoints 0.049 / 0.161, in-betweens 0.137 / 0.252). Not adopted.

Can the latent path contribute? ``render="warp"`` (slerp+warp: the real endpoints warped by
DIS optical flow from their reconstructions to ``D(z_t)``, then composited) was built to let it
say where things move. It loses to the composite on both nets and to the cross-fade on AlexNet,
and equals its ablation ("warp no path": flow towards the cross-fade of the reconstructions):
the decoded path carries no usable motion. The bounds (they look at the held-out frame, so
they are not methods) say why: with the reconstruction of the *true* frame as the guide -- a
perfect latent path through this decoder -- the composite gains only 0.002 (AlexNet) / 0.001
(VGG) at gap 4 and the warp stays near the cross-fade on AlexNet, while warping with flow
from the true frame itself would take gap 4 to 0.040 / 0.052: the motion is there to be had,
but these reconstructions are too blurry to locate it. Training the path itself -- the
interpolation term in the per-clip fine-tuning (``--clip-interp 1``: ``D(slerp)`` of two
training frames matched to the real frame between them; 11 more minutes of training) --
changed nothing that matters: at gap 4 the composite is 0.057 (82%) against 0.057 (80%)
without the path on AlexNet and 0.082 (92%) against 0.082 (98%) on VGG, the warp 0.062 (30%) /
0.084 (60%) as without the path, decoded slerp frames slightly worse (0.210 / 0.281); at gap 2
the composite wins more holes (60% / 70%) at the same means (0.046 / 0.066). A perceptual loss was not retried (see :mod:`reseq.synth.vae`: it sharpens the
decoded frames little at 128 px). Classic flow interpolation without any VAE (``flow``) has the
lowest VGG mean of all methods at gap 2 (0.058) and a lower one than the composite at gap 4
(0.079 vs 0.081), but it loses to the cross-fade on AlexNet at gap 4 and wins fewer gap-4
holes than the composite on both nets (42% / 60% vs 80% / 92%); the composite stays the
default.

A learned warp conditioned on the path (``warpnet-path``; ``--methods
warpnet-path,warpnet-no-path``): one small U-Net over all clips sees, at 64 px, A, B, their
reconstructions, t and the decoded slerp in-between, and predicts two flows and a blend mask
applied to the real endpoints at 128 px; trained on 2318 tuples of training frames only (2000
Adam steps of 16, L1; 365 s on one core). Its ablation (``warpnet-no-path``: the same net,
trained the same way, with the cross-fade of the reconstructions as the guide; 372 s) does as
well or better: gap 4 0.061 (38%) against 0.060 (38%) on AlexNet, 0.085 (55%) against 0.086
(75%) on VGG (cross-fade 0.059 / 0.087); head to head the path wins 35% / 40% of the gap-4
holes, and both lose to the composite (0.057 / 0.081). The path version fits its training
tuples better (L1 0.0134 against 0.0142) -- the VAE had seen their middle frames, never the
held-out ones -- and that does not carry over to the holes. Not adopted.

Training cost: ``reseq vae train`` with its defaults (64 px, latent 128, 30 epochs of 32) on
502 frames of ten dev clips took 77 s on one core (the issue's budget: 10 minutes for 500).

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
from .interpolate import composite_weights, crossfade, interpolate, lerp, slerp, through
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
    "composite_weights",
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
