"""A small convolutional variational autoencoder for animation frames, and its training loop.

The model
---------
:class:`VAE` maps a square RGB image of side ``size`` (a power of two, 16 to 256; default 64)
through ``log2(size / 4)`` stride-2 convolutions (32, 64, 128, 256, ... channels, BatchNorm-free,
LeakyReLU) to a 4 x 4 feature map, and from there by two linear layers to the mean ``mu`` and the
log-variance ``logvar`` of a diagonal Gaussian over a ``latent``-dimensional code ``z`` (default
128). During training ``z = mu + exp(logvar / 2) * eps`` (the reparameterization trick); for
encoding we use ``mu``. The decoder mirrors the encoder with transposed convolutions and ends in a
sigmoid, so outputs are in [0, 1]. With ``grid=g`` the encoder stops at a g x g map and the code
is ``latent`` channels on that grid (1 x 1 convolutions instead of the linear layers; ``dim`` =
``latent * g**2`` numbers, flattened, so slerp and the rest work unchanged).

The loss
--------
Per image, summed over pixels, averaged over the batch::

    loss = recon(x_hat, x) + beta * KL(N(mu, exp(logvar)) || N(0, I))

``recon`` is the summed squared error (``recon="mse"``, the default) or binary cross-entropy
summed over all ``3 * size**2`` values (``recon="bce"``, Kingma & Welling's Bernoulli decoder);
``beta`` defaults to 0.01. The old defaults (BCE + 1.0 KL, latent 64) blurred: per-clip models on
two dev clips (``cart_synfig_eye_open``, ``cyc_kenney_robot_walk``; 300 steps of 8 frames, gap-4
holes, AlexNet LPIPS at long edge 128) put slerp in-betweens 0.231 from the truth with BCE + 1.0
KL and 0.204 with MSE + 0.01 KL at 64 px, and an all-clip model at 128 px (20 epochs) 0.335.

What limits plain decoded frames, measured the same way (cross-fade: 0.058 on those two clips,
0.059 on all 22):

* **resolution** -- a *perfect* 64 px frame resized to the 128 px working size is already 0.173
  LPIPS (AlexNet) from the truth (0.021 at 128 px, 0.369 at 32 px), so no 64 px model can beat
  the cross-fade there; train at the output size (``size=128``) when it matters;
* **the clip's own frames** -- fine-tuning an all-clip 128 px model on the clip (100 steps,
  ``init=``) brings slerp from 0.335 (all 22 clips) to 0.157 (the two clips); training per clip
  from scratch for 300 steps to 0.147; a spatial code (``grid=8``, 8 channels, beta 0.001) to
  0.126, and it reconstructs the *endpoints* at 0.046 - 0.082: what is left is the in-between
  itself -- a latent half-way between two frames decodes to a blend, not to the motion;
* an **interpolation term** (``times=``, ``interp=``: decode the slerp of two training frames'
  codes and compare with the real frame between them, using the clip's order) made it worse in
  the same budget (0.181 vs 0.107 on ``cart_synfig_eye_open``, grid 8): it costs
  reconstruction sharpness first. Off by default;
* **per-hole fitting** -- fine-tuning the decoder on the two endpoints alone for 200 steps
  before decoding (``benchmarks/synthesis.py``, ``adapt-`` columns; 9 s per pair) brings the
  endpoints' reconstructions close to exact and the slerp in-betweens of the 40 gap-4 holes from
  0.205 to 0.089 (cross-fade 0.059): sharper, but a half-way code still decodes to a blend
  (numbers in :mod:`reseq.synth`).

Optionally ``perceptual * LPIPS(x_hat, x)`` is added (:func:`perceptual_loss`, our own AlexNet
LPIPS from :mod:`reseq.features`; off by default). Measured earlier on 7 dev clips (64 px model,
60 epochs, weight 1000, 26 cases): the AlexNet LPIPS of decoded in-betweens drops 0.13 -> 0.06
at 64 px but only 0.30 -> 0.25 at the 128 px working size, and the VGG LPIPS it was not trained
on 0.23 -> 0.20 (64 px) and 0.32 -> 0.31 (128 px): it mostly fits its own network, and adds a
faint checkerboard. Again at 128 px (fine-tuning as above, weight 1000, 100 steps,
``cart_synfig_eye_open``): AlexNet slerp 0.157 -> 0.122, still twice the cross-fade's 0.054,
while by VGG the in-betweens stay 0.255 from the truth against the cross-fade's 0.090; and it
about doubles the training time on CPU.

Fine-tuning
-----------
``train_vae(frames, init=model)`` trains a copy of ``model`` on ``frames`` with a fresh optimizer
(``reseq vae train FOLDER --from all.pt``): the way to get a model of the user's own frames
cheaply from a model trained on many.

Square inputs
-------------
Frames come in any aspect ratio. The VAE sees them *squashed* (resized, not letterboxed) to
``size x size``, so that every pixel the model spends carries picture, and decoded images are
resized back to the height and width of the frames they stand for (:func:`decode`, ``out_hw=``;
:func:`~reseq.synth.interpolate` uses the endpoints' size). Training folders are read with
:func:`reseq.frames.load_frames` at a long edge of ``4 * size`` and then squashed, so both axes
are downsampled with antialiasing rather than the short one being upsampled.

Training
--------
:func:`train_vae` is deterministic for a given ``seed``: torch's generator is seeded, the order
of the frames in each epoch is ``numpy.random.default_rng([seed, epoch]).permutation``, and the
torch RNG state is saved with each checkpoint, so a resumed run continues exactly as an
uninterrupted one would. A checkpoint (written atomically after each epoch) holds the model
config, weights, optimizer state, the epoch, the loss history, the class names of the training
frames, the image size and a format version; :func:`load_model` reads it back.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._util import atomic_path, progress
from ..errors import ReseqError

__all__ = [
    "CHECKPOINT_VERSION",
    "VAE",
    "TrainResult",
    "VAEConfig",
    "decode",
    "encode",
    "load_model",
    "load_training_frames",
    "perceptual_loss",
    "save_checkpoint",
    "slerp_torch",
    "to_tensor",
    "train_vae",
    "vae_loss",
]

CHECKPOINT_VERSION = 1
_FORMAT = "reseq-vae"


@dataclass(frozen=True)
class VAEConfig:
    """Architecture and loss settings of a :class:`VAE` (stored in every checkpoint)."""

    size: int = 64
    latent: int = 128
    base_channels: int = 32
    max_channels: int = 256
    beta: float = 0.01
    recon: str = "mse"
    perceptual: float = 0.0
    perceptual_net: str = "alex"
    grid: int = 0
    interp: float = 0.0

    def __post_init__(self) -> None:
        if self.size < 16 or self.size > 256 or self.size & (self.size - 1):
            raise ReseqError(f"VAE image size must be a power of two from 16 to 256, got {self.size}")
        if self.latent < 2:
            raise ReseqError(f"VAE latent size must be at least 2, got {self.latent}")
        if self.recon not in ("bce", "mse"):
            raise ReseqError(f"unknown reconstruction loss {self.recon!r}; use 'bce' or 'mse'")
        if not self.beta >= 0:
            raise ReseqError(f"beta must be non-negative, got {self.beta}")
        if not self.perceptual >= 0:
            raise ReseqError(f"the perceptual weight must be non-negative, got {self.perceptual}")
        if self.perceptual_net not in ("alex", "vgg"):
            raise ReseqError(f"unknown perceptual network {self.perceptual_net!r}")
        if not self.interp >= 0:
            raise ReseqError(f"the interpolation weight must be non-negative, got {self.interp}")
        if self.grid and (self.grid < 2 or self.grid > self.size // 2 or self.grid & (self.grid - 1)):
            raise ReseqError(f"the latent grid must be 0 or a power of two from 2 to size/2, "
                             f"got {self.grid}")

    @property
    def dim(self) -> int:
        """Dimensions of a latent code: ``latent``, or ``latent * grid**2`` with a grid."""
        return self.latent * self.grid**2 if self.grid else self.latent

    @property
    def channels(self) -> list[int]:
        """Channels after each stride-2 convolution of the encoder."""
        n = int(math.log2(self.size // (self.grid or 4)))
        return [min(self.base_channels * 2**i, self.max_channels) for i in range(n)]


class VAE(nn.Module):
    """Convolutional VAE on ``(B, 3, size, size)`` tensors in [0, 1].

    ``classes`` (the training folders' names) and ``config`` travel with the model.

    >>> import torch
    >>> m = VAE(VAEConfig(size=32, latent=8))
    >>> mu, logvar = m.encode(torch.zeros(2, 3, 32, 32))
    >>> tuple(mu.shape), tuple(m.decode(mu).shape)
    ((2, 8), (2, 3, 32, 32))
    """

    def __init__(self, config: VAEConfig | None = None, classes: list[str] | None = None):
        super().__init__()
        self.config = config or VAEConfig()
        self.classes = list(classes or [])
        ch = self.config.channels
        layers: list[nn.Module] = []
        c_in = 3
        for c in ch:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in = c
        g, lat = self.config.grid, self.config.latent
        if g:  # spatial latent: 1x1 convolutions to and from a (latent, grid, grid) code
            self.encoder = nn.Sequential(*layers)
            self.fc_mu = nn.Conv2d(ch[-1], lat, 1)
            self.fc_logvar = nn.Conv2d(ch[-1], lat, 1)
            self.fc_dec = nn.Conv2d(lat, ch[-1], 1)
        else:
            self.encoder = nn.Sequential(*layers, nn.Flatten())
            flat = ch[-1] * 4 * 4
            self.fc_mu = nn.Linear(flat, lat)
            self.fc_logvar = nn.Linear(flat, lat)
            self.fc_dec = nn.Linear(lat, flat)
        dec: list[nn.Module] = []
        rev = ch[::-1]
        for c, c_next in itertools.pairwise(rev):
            dec += [nn.ConvTranspose2d(c, c_next, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        dec += [nn.ConvTranspose2d(rev[-1], 3, 4, stride=2, padding=1)]
        self.decoder = nn.Sequential(*dec)
        self._top = ch[-1]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h).flatten(1), self.fc_logvar(h).flatten(1)
        return mu, logvar.clamp(-20.0, 10.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        g = self.config.grid
        if g:
            h = F.leaky_relu(self.fc_dec(z.view(-1, self.config.latent, g, g)), 0.2)
        else:
            h = F.leaky_relu(self.fc_dec(z), 0.2).view(-1, self._top, 4, 4)
        return self.decoder(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] from latent codes."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, mu, logvar)`` with z sampled by reparameterization (training)."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        return self.decode_logits(z), mu, logvar


def vae_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
             beta: float = 1.0, recon: str = "bce") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, reconstruction, kl)``, each summed per image and averaged over the batch.

    >>> import torch
    >>> x = torch.full((1, 3, 2, 2), 0.5)
    >>> total, rec, kl = vae_loss(torch.zeros(1, 3, 2, 2), x, torch.zeros(1, 4), torch.zeros(1, 4))
    >>> round(rec.item(), 4), abs(kl.item())    # 12 values * ln 2; posterior = prior: KL 0
    (8.3178, 0.0)
    """
    b = x.shape[0]
    if recon == "bce":
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / b
    else:
        rec = F.mse_loss(torch.sigmoid(logits), x, reduction="sum") / b
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / b
    return rec + beta * kl, rec, kl


def _recon(logits: torch.Tensor, x: torch.Tensor, recon: str) -> torch.Tensor:
    if recon == "bce":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    return F.mse_loss(torch.sigmoid(logits), x, reduction="sum") / x.shape[0]


def slerp_torch(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor,
                eps: float = 1e-4) -> torch.Tensor:
    """Row-wise slerp of ``(B, D)`` codes at ``t`` ``(B,)`` (differentiable; linear if collinear).

    >>> import torch
    >>> slerp_torch(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]))
    tensor([[0.7071, 0.7071]])
    """
    t = t.view(-1, 1)
    n0, n1 = z0.norm(dim=1, keepdim=True), z1.norm(dim=1, keepdim=True)
    cos = ((z0 * z1).sum(1, keepdim=True) / (n0 * n1).clamp_min(1e-12)).clamp(-1.0, 1.0)
    alpha = torch.arccos(cos)
    sin_a = torch.sin(alpha)
    ok = sin_a >= eps
    safe = torch.where(ok, sin_a, torch.ones_like(sin_a))
    sph = (torch.sin((1 - t) * alpha) / safe) * z0 + (torch.sin(t * alpha) / safe) * z1
    return torch.where(ok, sph, (1 - t) * z0 + t * z1)


def _triples(times: np.ndarray | None, n: int, span: float) -> np.ndarray:
    """Rows ``(a, m, b, t)`` of frame triples ordered in time within ``span``.

    >>> _triples(np.array([0, 1, 2, 5]), 4, span=3.0)
    array([[0. , 1. , 2. , 0.5]])
    """
    if times is None:
        raise ReseqError("the interpolation term needs the frames' `times`")
    times = np.asarray(times, dtype=np.float64)
    if times.shape != (n,):
        raise ReseqError(f"need one time per frame ({n}), got shape {times.shape}")
    order = np.argsort(times, kind="stable")
    tt = times[order]
    rows = []
    for p in range(n):
        for r in range(p + 2, n):
            if tt[r] - tt[p] > span:
                break
            for q in range(p + 1, r):
                if tt[p] < tt[q] < tt[r]:
                    rows.append((order[p], order[q], order[r], (tt[q] - tt[p]) / (tt[r] - tt[p])))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def perceptual_loss(x_hat: torch.Tensor, x: torch.Tensor, net: str = "alex") -> torch.Tensor:
    """Differentiable LPIPS v0.1 between batches in [0, 1], summed over the batch.

    Uses :func:`reseq.features.load_network` (frozen AlexNet / VGG16 trunk and LPIPS weights):
    channel-normalised activations of the five taps, squared differences weighted per channel,
    averaged over positions, summed over taps; as :func:`reseq.features.lpips_pair`.
    """
    from ..features import load_network

    model = load_network(net)
    fa, fb = model(x_hat * 2 - 1), model(x * 2 - 1)
    total = x.new_zeros(())
    for a, b, w in zip(fa, fb, model.lin, strict=True):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + ((a - b).pow(2) * w.view(1, -1, 1, 1)).sum(1).mean((1, 2)).sum()
    return total


# ---------------------------------------------------------------------------------------------
# images <-> tensors

def to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, size, size)`` float32 in [0, 1] (squashed, bilinear).

    >>> to_tensor(np.zeros((2, 9, 16, 3), np.uint8), 8).shape
    torch.Size([2, 3, 8, 8])
    """
    images = _check_images(images)
    t = torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2).float() / 255.0
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return t.clamp_(0.0, 1.0)


def _from_tensor(t: torch.Tensor, out_hw: tuple[int, int] | None) -> np.ndarray:
    if out_hw is not None and tuple(t.shape[-2:]) != tuple(out_hw):
        t = F.interpolate(t, size=tuple(out_hw), mode="bilinear", align_corners=False,
                          antialias=True)
    return (t.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ReseqError(f"expected RGB images of shape (N, H, W, 3), got {images.shape}")
    if images.dtype != np.uint8:
        raise ReseqError(f"expected uint8 images, got {images.dtype}")
    return images


@torch.no_grad()
def encode(model: VAE, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Latent means ``(N, latent)`` float32 of ``(N, H, W, 3)`` uint8 images."""
    model.eval()
    images = _check_images(images)
    out = [model.encode(to_tensor(images[i:i + batch], model.config.size))[0]
           for i in range(0, len(images), batch)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(
        (0, model.config.dim), np.float32)


@torch.no_grad()
def decode(model: VAE, z: np.ndarray, out_hw: tuple[int, int] | None = None,
           batch: int = 64) -> np.ndarray:
    """Decode latent codes ``(N, latent)`` to ``(N, H, W, 3)`` uint8, resized to ``out_hw``."""
    model.eval()
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    if z.shape[1] != model.config.dim:
        raise ReseqError(f"latent codes have {z.shape[1]} dimensions, the model {model.config.dim}")
    parts = [_from_tensor(model.decode(torch.from_numpy(z[i:i + batch])), out_hw)
             for i in range(0, len(z), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, *(out_hw or (0, 0)), 3), np.uint8)


# ---------------------------------------------------------------------------------------------
# checkpoints

def save_checkpoint(path: str | os.PathLike, model: VAE, optimizer: torch.optim.Optimizer | None = None,
                    epoch: int = 0, history: list[float] | None = None, seed: int = 0,
                    force: bool = True, extra: dict[str, Any] | None = None) -> Path:
    """Write model config, weights, optimizer state, epoch, classes, size and version atomically."""
    ckpt = {
        "format": _FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": asdict(model.config),
        "size": model.config.size,
        "classes": list(model.classes),
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": int(epoch),
        "history": [float(h) for h in (history or [])],
        "seed": int(seed),
        "torch_rng": torch.get_rng_state(),
        "extra": dict(extra or {}),
    }
    with atomic_path(path, force=force) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def _read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ReseqError(f"VAE model file not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ReseqError(f"{path} is not a readable reseq VAE checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise ReseqError(f"{path} is not a reseq VAE checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ReseqError(f"{path} has checkpoint version {ckpt.get('version')}; "
                         f"this reseq reads version {CHECKPOINT_VERSION}")
    return ckpt


def load_model(path: str | os.PathLike) -> VAE:
    """Read a checkpoint written by :func:`train_vae`; the model is in eval mode.

    ``model.checkpoint`` keeps the epoch, loss history and seed.
    """
    ckpt = _read_checkpoint(path)
    model = _model_from(ckpt, path)
    model.eval()
    return model


def _model_from(ckpt: dict[str, Any], path: str | os.PathLike) -> VAE:
    try:
        model = VAE(VAEConfig(**ckpt["config"]), classes=ckpt.get("classes"))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ReseqError(f"{path}: damaged VAE checkpoint ({type(exc).__name__})") from None
    model.checkpoint = {k: ckpt.get(k) for k in ("epoch", "history", "seed", "extra")}
    return model


# ---------------------------------------------------------------------------------------------
# training

@dataclass
class TrainResult:
    """What :func:`train_vae` returns: the model (eval mode) and the mean loss of each epoch."""

    model: VAE
    history: list[float] = field(default_factory=list)
    epochs_run: int = 0


def train_vae(images: np.ndarray, *, classes: list[str] | None = None, size: int = 64,
              latent: int = 128, epochs: int = 30, batch: int = 32, lr: float = 1e-3,
              beta: float = 0.01, recon: str = "mse", perceptual: float = 0.0, grid: int = 0,
              seed: int = 0, checkpoint: str | os.PathLike | None = None, resume: bool = False,
              force: bool = False, show_progress: bool = True,
              init: VAE | None = None, times: np.ndarray | None = None, interp: float = 0.0,
              span: float = 4.0) -> TrainResult:
    """Train a :class:`VAE` on ``(N, H, W, 3)`` uint8 frames for ``epochs`` epochs (in total).

    With ``checkpoint`` the state is written there after every epoch (refusing to replace an
    existing file unless ``force`` or ``resume``); with ``resume`` training continues from it up
    to ``epochs``. Adam, mini-batches of ``batch`` frames reshuffled each epoch.

    ``init`` fine-tunes a copy of an existing model (e.g. one trained on many clips) on these
    frames, with a fresh optimizer; its architecture (size, latent, grid) wins over ``size``,
    ``latent`` and ``grid``; the loss settings (``beta``, ``recon``, ...) are the ones given here.

    ``times`` (one number per frame, e.g. its index in the clip) and ``interp > 0`` add the
    interpolation term: each step also draws ``max(1, batch // 4)`` triples of frames
    ``a, m, b`` with ``times[a] < times[m] < times[b] <= times[a] + span`` and adds
    ``interp * recon(decode(slerp(mu_a, mu_b; t)), m)``, ``t`` the time fraction of ``m``.
    """
    images = _check_images(images)
    if len(images) == 0:
        raise ReseqError("no frames to train the VAE on")
    if epochs < 0 or batch < 1 or not lr > 0:
        raise ReseqError("epochs must be >= 0, batch >= 1 and lr > 0")
    torch.manual_seed(seed)
    config = VAEConfig(size=size, latent=latent, beta=beta, recon=recon, perceptual=perceptual,
                       grid=grid, interp=interp)
    start, history, ckpt = 0, [], None
    exists = checkpoint is not None and Path(checkpoint).exists()
    if resume and not exists:
        raise ReseqError(f"cannot resume: {checkpoint} does not exist")
    if exists and not resume and not force:
        raise ReseqError(f"{checkpoint} already exists; use --force to overwrite it "
                         "or --resume to continue training it")
    if resume:
        ckpt = _read_checkpoint(checkpoint)
        model = _model_from(ckpt, checkpoint)
        config = model.config
        if config.size != size or config.latent != latent or config.grid != grid:
            raise ReseqError(f"{checkpoint} was trained at size {config.size} / latent "
                             f"{config.latent} / grid {config.grid}; resume with the same "
                             "--size, --latent and --grid")
    elif init is not None:
        config = VAEConfig(**{**asdict(init.config), "beta": beta, "recon": recon,
                              "perceptual": perceptual, "interp": interp})
        model = VAE(config, classes=classes if classes is not None else init.classes)
        model.load_state_dict(init.state_dict())
    else:
        model = VAE(config, classes=classes)
    model.classes = list(classes if classes is not None else model.classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if ckpt is not None:
        if ckpt.get("optimizer"):
            opt.load_state_dict(ckpt["optimizer"])
            for group in opt.param_groups:
                group["lr"] = lr
        start = int(ckpt.get("epoch", 0))
        history = list(ckpt.get("history", []))
        seed = int(ckpt.get("seed", seed))
        if ckpt.get("torch_rng") is not None:
            torch.set_rng_state(ckpt["torch_rng"])

    data = to_tensor(images, config.size)
    n = len(data)
    triples = _triples(times, n, span) if interp > 0 else None
    if triples is not None and not len(triples):
        raise ReseqError("the interpolation term needs `times` with at least one triple of frames "
                         f"within a span of {span:g}")
    steps_per_epoch = math.ceil(n / batch)
    bar = progress(range(start, epochs), desc="training VAE", total=max(epochs - start, 0),
                   enabled=show_progress, unit="epoch")
    for epoch in bar:
        model.train()
        perm = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))
        total = 0.0
        for s in range(steps_per_epoch):
            xb = data[perm[s * batch:(s + 1) * batch]]
            logits, mu, logvar = model(xb)
            loss, _, _ = vae_loss(logits, xb, mu, logvar, config.beta, config.recon)
            if config.perceptual > 0:
                lp = perceptual_loss(torch.sigmoid(logits), xb, config.perceptual_net) / len(xb)
                loss = loss + config.perceptual * lp
            if triples is not None:
                pick = triples[np.random.default_rng([seed, epoch, s]).integers(
                    len(triples), size=max(1, len(xb) // 4))]
                ia, im, ib = (torch.from_numpy(pick[:, k].astype(np.int64)) for k in range(3))
                mu_ab = model.encode(data[torch.cat([ia, ib])])[0]
                z = slerp_torch(mu_ab[:len(pick)], mu_ab[len(pick):],
                                torch.from_numpy(pick[:, 3]).float())
                loss = loss + interp * _recon(model.decode_logits(z), data[im], config.recon)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        history.append(total / n)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history[-1]:.1f}")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, epoch + 1, history, seed, force=True)
    model.eval()
    model.checkpoint = {"epoch": max(epochs, start), "history": history, "seed": seed, "extra": {}}
    return TrainResult(model=model, history=history, epochs_run=max(epochs - start, 0))


# ---------------------------------------------------------------------------------------------
# training data

def _load_folder(folder: Path, size: int) -> np.ndarray:
    """Frames of one folder at long edge ``size`` through :func:`reseq.frames.load_frames`."""
    from ..frames import load_frames

    return np.asarray(load_frames(str(folder), size=size, progress=False).array)


def load_training_frames(folders: list[str | os.PathLike], size: int = 64,
                         ) -> tuple[np.ndarray, list[str], list[str]]:
    """Frames of several folders squashed to ``size x size``: ``(images, labels, classes)``.

    Each folder's name is the class label of its frames; ``classes`` lists them in order.
    """
    imgs, labels, classes = [], [], []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise ReseqError(f"not a folder of frames: {folder}")
        # load larger than the target so that squashing only ever downsamples (antialiased)
        arr = _load_folder(folder, 4 * size)
        name = folder.resolve().name
        if name in classes:
            raise ReseqError(f"two training folders are both named {name!r}")
        classes.append(name)
        sq = _from_tensor(to_tensor(arr, size), None)
        imgs.append(sq)
        labels += [name] * len(sq)
    if not imgs:
        raise ReseqError("no training folders given")
    return np.concatenate(imgs), labels, classes
