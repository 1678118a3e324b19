"""The denoising autoencoder (DAE) baseline of the paper (section 5.1, Figure 4; eq. 9).

The paper compares LPIPS with the L2 distance between the bottleneck activations of a custom
denoising autoencoder: residual blocks, SELU activations, batch normalization, a sigmoid output;
input 320×180 RGB in [0, 1], bottleneck 500 channels × 9 × 16; Adam, batch 16, mean squared error
against the clean frame from a noise-corrupted input, weights drawn from a truncated normal
(LeCun/SELU initialisation). The exact layer widths are in a figure we do not have, so ours are
ours (:class:`DAEConfig`): three stride-2/2/5 downsamplings (180×320 → 90×160 → 45×80 → 9×16)
with residual blocks at 45×80, mirrored by transposed convolutions.

The paper trained on 60,000 anime frames; here :func:`train_dae` trains on whatever frames it is
given (the evaluation uses frames disjoint from the clips it scores) for a fixed number of steps
sized for a laptop CPU, with checkpoints and resume. :func:`dae_embedding` returns the flattened
bottleneck (72,000 values per frame), cached on disk by frame content and model hash.

Frames of any size are scaled linearly to 320×180 (as the paper did), ignoring the aspect ratio.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import cache as _cache
from .._util import atomic_path, cache_dir, progress
from ..errors import ReseqError

__all__ = [
    "DAE",
    "DAEConfig",
    "dae_distance_matrix",
    "dae_embedding",
    "default_dae",
    "load_dae",
    "model_hash",
    "prepare_images",
    "train_dae",
    "training_set",
]

HEIGHT, WIDTH = 180, 320
BOTTLENECK = (500, 9, 16)
_FORMAT = "reseq-dae-1"


@dataclasses.dataclass(frozen=True)
class DAEConfig:
    """Architecture and training settings (defaults: about 3 minutes on 2 CPU cores)."""

    widths: tuple[int, int, int] = (16, 32, 48)
    res_blocks: int = 2
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    noise_std: float = 0.1
    checkpoint_every: int = 50
    seed: int = 0

    def architecture(self) -> dict:
        return {"widths": list(self.widths), "res_blocks": self.res_blocks}


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        fan_in = module.weight[0].numel() if isinstance(module, nn.Conv2d) else (
            module.weight.shape[0] * module.weight[0, 0].numel())
        std = 1.0 / math.sqrt(fan_in)
        nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.SELU(),
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch))
        self.act = nn.SELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


def _conv(cin: int, cout: int, k: int, s: int, p: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=False), nn.BatchNorm2d(cout), nn.SELU()]


def _deconv(cin: int, cout: int, k: int, s: int, p: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, bias=False),
            nn.BatchNorm2d(cout), nn.SELU()]


class DAE(nn.Module):
    """Denoising autoencoder: (B, 3, 180, 320) in [0, 1] → bottleneck (B, 500, 9, 16) → image.

    >>> model = DAE().eval()
    >>> tuple(model.encode(torch.zeros(1, 3, 180, 320)).shape)
    (1, 500, 9, 16)
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 48), res_blocks: int = 2):
        super().__init__()
        c1, c2, c3 = widths
        self.encoder = nn.Sequential(
            *_conv(3, c1, 3, 2, 1),                          # 90 x 160
            *_conv(c1, c2, 3, 2, 1),                         # 45 x 80
            *[_ResBlock(c2) for _ in range(res_blocks)],
            *_conv(c2, c3, 3, 1, 1),
            nn.Conv2d(c3, BOTTLENECK[0], 5, stride=5),       # 9 x 16 x 500
            nn.BatchNorm2d(BOTTLENECK[0]), nn.SELU())
        self.decoder = nn.Sequential(
            *_deconv(BOTTLENECK[0], c3, 5, 5, 0),            # 45 x 80
            *_conv(c3, c2, 3, 1, 1),
            *[_ResBlock(c2) for _ in range(res_blocks)],
            *_deconv(c2, c1, 4, 2, 1),                       # 90 x 160
            nn.ConvTranspose2d(c1, 3, 4, stride=2, padding=1),  # 180 x 320
            nn.Sigmoid())
        self.apply(_init)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def prepare_images(array: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames → (N, 3, 180, 320) float32 in [0, 1], scaled linearly.

    >>> tuple(prepare_images(np.zeros((2, 64, 48, 3), np.uint8)).shape)
    (2, 3, 180, 320)
    """
    array = np.asarray(array)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ReseqError(f"expected (N, H, W, 3) RGB frames, got shape {array.shape}")
    x = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (HEIGHT, WIDTH):
        x = F.interpolate(x, size=(HEIGHT, WIDTH), mode="bilinear", align_corners=False,
                          antialias=True).clamp_(0.0, 1.0)
    return x.contiguous()


def model_hash(model: DAE) -> str:
    """sha256 of the model's parameters and buffers (the cache key of its embeddings)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _save(path: Path, model: DAE, opt: torch.optim.Optimizer, config: DAEConfig, step: int,
          losses: list[float], data_hash: str, force: bool) -> None:
    buf = io.BytesIO()
    torch.save({"format": _FORMAT, "config": dataclasses.asdict(config), "step": step,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "rng": torch.get_rng_state(), "losses": losses, "data_hash": data_hash}, buf)
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(buf.getvalue())


def _load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ReseqError(f"DAE checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is a user input problem
        raise ReseqError(f"{path} is not a reseq DAE checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise ReseqError(f"{path} is not a reseq DAE checkpoint")
    return ckpt


def load_dae(path: str | Path) -> DAE:
    """Load a trained DAE (in eval mode) from a checkpoint written by :func:`train_dae`."""
    ckpt = _load_checkpoint(path)
    cfg = ckpt["config"]
    model = DAE(cfg["widths"], cfg["res_blocks"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


def _training_tensor(images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """Frames (one array or several of different sizes) → (N, 3, 180, 320) uint8 tensor."""
    arrays = [images] if isinstance(images, np.ndarray) else list(images)
    chunks = []
    for arr in arrays:
        for i in range(0, len(arr), 64):
            x = prepare_images(arr[i:i + 64])
            chunks.append((x * 255.0).round_().to(torch.uint8))
    if not chunks:
        raise ReseqError("no training frames for the DAE")
    return torch.cat(chunks)


def train_dae(images: np.ndarray | Sequence[np.ndarray], out: str | Path,
              config: DAEConfig = DAEConfig(),
              resume: bool = False, force: bool = False, show_progress: bool = True,
              log: Callable[[str], None] | None = None) -> Path:
    """Train a DAE on ``images`` ((N, H, W, 3) uint8, or a list of such arrays of any sizes)
    and write the checkpoint to ``out``; returns ``out``.

    Batches of ``config.batch_size`` frames are drawn with ``numpy.random.default_rng(seed)``,
    corrupted with Gaussian noise (``noise_std``) and the MSE to the clean frames is minimised with
    Adam. A checkpoint is written every ``checkpoint_every`` steps; ``resume`` continues from an
    existing ``out`` (same data and architecture required). Deterministic for a given seed.
    """
    out = Path(out)
    x_all = _training_tensor(images)
    if len(x_all) < 2:
        raise ReseqError("need at least 2 training frames for the DAE")
    data_hash = hashlib.sha256(x_all.numpy().tobytes()).hexdigest()
    torch.manual_seed(config.seed)
    model = DAE(config.widths, config.res_blocks)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    start, losses = 0, []
    if out.exists() and resume:
        ckpt = _load_checkpoint(out)
        saved = DAEConfig(**{**ckpt["config"], "widths": tuple(ckpt["config"]["widths"])})
        if saved.architecture() != config.architecture() or ckpt["data_hash"] != data_hash:
            raise ReseqError(f"{out} was trained with other frames or another architecture; "
                             "cannot resume")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"])
        start, losses = int(ckpt["step"]), list(ckpt["losses"])
    elif out.exists() and not force:
        raise ReseqError(f"{out} already exists; use --force to overwrite it or --resume")
    force = True if out.exists() else force
    rng = np.random.default_rng(config.seed)
    # Skip the batches already drawn so a resumed run continues the same sequence.
    for _ in range(start):
        rng.choice(len(x_all), size=min(config.batch_size, len(x_all)), replace=False)
    model.train()
    t0 = time.perf_counter()
    steps = range(start, config.steps)
    for step in progress(steps, desc="train DAE", total=len(steps), enabled=show_progress,
                         unit="step"):
        idx = rng.choice(len(x_all), size=min(config.batch_size, len(x_all)), replace=False)
        clean = x_all[np.sort(idx)].float() / 255.0
        noisy = (clean + config.noise_std * torch.randn_like(clean)).clamp_(0.0, 1.0)
        loss = F.mse_loss(model(noisy), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if done % config.checkpoint_every == 0 or done == config.steps:
            _save(out, model, opt, config, done, losses, data_hash, force=True)
        if log is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            log(f"step {done}/{config.steps} loss {np.mean(losses[-config.checkpoint_every:]):.5f} "
                f"({time.perf_counter() - t0:.0f} s)")
    if start >= config.steps and not out.exists():  # pragma: no cover - nothing to do
        _save(out, model, opt, config, start, losses, data_hash, force=True)
    return out


def dae_embedding(model: DAE, array: np.ndarray, batch_size: int = 16,
                  use_cache: bool = True) -> np.ndarray:
    """Flattened bottleneck activations (N, 72000) float32 of (N, H, W, 3) uint8 frames.

    Cached on disk by the frames' bytes and :func:`model_hash`.
    """
    array = np.ascontiguousarray(array)
    key = hashlib.sha256()
    key.update(model_hash(model).encode())
    key.update(str(array.shape).encode())
    key.update(array.tobytes())
    folder = _cache.folder("dae-embeddings") if use_cache else None
    path = folder / f"{key.hexdigest()}.demb" if folder is not None else None
    data = _cache.read_entry(path) if path is not None else None  # verified, else recomputed
    if data is not None:
        return np.load(io.BytesIO(data), allow_pickle=False)
    model = model.eval()
    chunks = []
    with torch.inference_mode():
        for i in range(0, len(array), batch_size):
            x = prepare_images(array[i:i + batch_size])
            chunks.append(model.encode(x).flatten(1).numpy().astype(np.float32))
    emb = np.concatenate(chunks) if chunks else np.zeros((0, math.prod(BOTTLENECK)), np.float32)
    if path is not None:
        buf = io.BytesIO()
        np.save(buf, emb)
        _cache.put(path, buf.getbuffer())
    return emb


def dae_distance_matrix(model: DAE, array: np.ndarray) -> np.ndarray:
    """Eq. 9: the (N, N) L2 distances between bottleneck activations."""
    from scipy.spatial.distance import cdist

    emb = dae_embedding(model, array).astype(np.float64)
    d = cdist(emb, emb)
    np.fill_diagonal(d, 0.0)
    return d


def training_set(corpus: str | Path | None = None, size: int = 320,
                 show_progress: bool = False) -> tuple[list[np.ndarray], list[str]]:
    """The default DAE training frames, disjoint from the clips the evaluation scores.

    The loops of ``corpus`` (``cyclic`` clips, never scored), the 78 Kenney character sprites
    (``sample:kenney``) and the Big Buck Bunny frames after the dev clip's range (frame 131; the
    dev clip uses frames 0–130). Returns (arrays, descriptions).
    """
    from ..frames import load_frames
    from .protocol import read_corpus

    arrays, names = [], []
    if corpus is not None:
        for clip in read_corpus(corpus, include_cyclic=True):
            if clip.cyclic:
                arrays.append(load_frames(clip.path, size=size, progress=False).array)
                names.append(f"{clip.name} ({len(arrays[-1])})")
    kenney = load_frames("sample:kenney", size=size, progress=show_progress).array
    arrays.append(kenney)
    names.append(f"sample:kenney ({len(kenney)})")
    bunny = load_frames("sample:bunny", size=size, progress=show_progress).array[131:]
    if len(bunny):
        arrays.append(bunny)
        names.append(f"sample:bunny frames 131+ ({len(bunny)})")
    return arrays, names


def default_dae(corpus: str | Path | None = None, config: DAEConfig = DAEConfig(),
                show_progress: bool = True,
                log: Callable[[str], None] | None = None) -> tuple[DAE, Path]:
    """The DAE trained on :func:`training_set` with ``config``, cached by data and config hash.

    Trains on first use (about 3 minutes on 2 CPU cores with the defaults), then loads.
    """
    arrays, names = training_set(corpus, show_progress=show_progress)
    key = hashlib.sha256(repr(sorted(dataclasses.asdict(config).items())).encode())
    key.update(_FORMAT.encode())
    for arr in arrays:
        key.update(str(arr.shape).encode())
        key.update(np.ascontiguousarray(arr).tobytes())
    path = cache_dir("dae") / f"dae-{key.hexdigest()[:24]}.pt"
    if not path.exists() or _load_checkpoint(path)["step"] < config.steps:
        if log is not None:
            log(f"training the DAE on {sum(len(a) for a in arrays)} frames: {', '.join(names)}")
        train_dae(arrays, path, config, resume=path.exists(), show_progress=show_progress, log=log)
    return load_dae(path), path
