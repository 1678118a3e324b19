"""Leave-out in-betweening on the dev clips: VAE slerp / lerp against a pixel cross-fade.

For every dev clip we hold out

* the middle frame of a triple (frames i, i+1, i+2: **gap 2**), and
* the middle three frames of a quintuple (frames i..i+4: **gap 4**),

synthesize them from the two outer frames and measure LPIPS (AlexNet and VGG, :mod:`reseq.features`)
to the true frames, at the working size (long edge ``--eval-size``, default 128; 64 is too small
for AlexNet on the wide 320x136 clips). The VAE works at ``--size`` (default 128: a perfect 64 px
frame resized up to 128 is already 0.17 AlexNet LPIPS from the truth, three times the cross-fade's
error) and its output is resized to the clip's aspect ratio.

Methods: ``vae-slerp`` and ``vae-lerp`` (decode the interpolated latent means,
:func:`reseq.synth.interpolate` ``render="decode"``), ``vae-slerp+res`` (slerp plus the
cross-faded reconstruction errors of the two endpoints, ``render="residual"``),
``vae-slerp+comp`` (the product default, ``render="composite"``: each pixel from the real
endpoint whose reconstruction the decoded slerp in-between resembles there), ``vae-slerp+warp``
(``render="warp"``: the real endpoints backward-warped by DIS optical flow from their
reconstructions to the decoded slerp in-between, then composited), ``flow`` (classic optical-flow
interpolation on the real frames, no VAE: :func:`reseq.synth.interpolate.flow_interpolate`),
``crossfade`` (``(1-t) A + t B`` in pixels) and ``nearest`` (repeat the closer outer frame: what
a resequencer without synthesis shows).

Ablations and bounds (same code, :func:`reseq.synth.interpolate.render_from_guides`, other
guides): ``no-path+comp`` / ``no-path+warp`` put the cross-fade of the two reconstructions where
the decoded slerp in-between goes -- what the render owes to the latent path itself;
``oracle+comp`` / ``oracle+warp`` put the reconstruction of the *true* held-out frame there --
what a perfect latent path could give through this decoder; ``oracle-flow`` warps with flows
measured from the true frame itself (no VAE) -- how good warping could be if the motion were
known. The ``oracle`` columns look at the answer: bounds, not methods. The composite's two
constants (tau, sigma) were chosen on the clips in ``TUNED``; the summary also gives the
default's wins on the other clips alone.

Per-hole test-time adaptation (opt-in: ``--methods all`` or name them): for each hole a copy of
the clip's model is fine-tuned on the two outer frames alone (:func:`adapt_pair`:
``--adapt-steps`` Adam steps, default 200 at ``--adapt-lr`` 1e-3, L1 loss; decoder only, encoder
frozen, unless ``--adapt-train all``; ``--adapt-perceptual W`` adds W times their AlexNet
LPIPS), so that ``D(z_A) ~ A`` and ``D(z_B) ~ B`` become sharp, and then ``adapt-slerp``
decodes the slerp in-betweens, ``adapt-slerp+comp`` composites as the default render does, and
``adapt-no-path+comp`` is that composite's ablation (the cross-fade of the adapted
reconstructions as the guide). ``adapt-z-*``: the two latent codes are free parameters too
(``--adapt-code-lr``, initialised at the encoder means). Each costs seconds per hole; the
summary reports them.

Latent-conditioned warping (opt-in: ``--methods warpnet-path,warpnet-no-path``): ONE small
U-Net (:class:`WarpNet`, base width ``--warp-width``) over all clips sees, squashed to 64 px,
the two real endpoints, their reconstructions, the guide and t, and predicts two backward flows
(t->A, t->B) and a blend mask (added to the cross-fade's ``logit(1 - t)``, so an untrained net
is the cross-fade); the flows and mask are upsampled and applied to the real endpoints at the
evaluation size (:func:`warp_render`, ``grid_sample``): ``M warp(A) + (1 - M) warp(B)``. It is
trained (:func:`train_warpnet`: seeded Adam, ``--warp-steps`` steps of ``--warp-batch`` at
``--warp-lr``, cosine decay, gradient norm clipped at 1, flows bounded by a tanh to a quarter
of the frame, L1 at 64 px, random A/B swap and horizontal flip) on the tuples (i, i+j, i+2j),
j = 1, 2, and the quarter frames of (i, .., i+4j), j = 1, 2, whose three frames
are all training frames (no held-out frame is ever seen). ``warpnet-path``: the guide is the
decoded slerp in-between ``D(slerp(z_A, z_B; t))`` of the clip's model; ``warpnet-no-path``,
its ablation, the same net trained the same way with the cross-fade of the two reconstructions
as the guide. Both nets are cached (``warpnet-<key>.pt``); the summary gives their head to head.
Full run (defaults: width 16, 2000 steps of 16 at lr 1e-3; 365 / 372 s on one core; gap 4,
AlexNet / VGG): path 0.061 / 0.085, ablation 0.060 / 0.086, cross-fade 0.059 / 0.087; the path
wins 35% / 40% of the gap-4 holes against its ablation: the latent path does no work here.

``--clip-interp W`` adds the VAE's interpolation term to the per-clip fine-tuning (decode the
slerp of two training frames' codes and match the real frame between them; held-out frames
are never used): a way to train the latent path itself to carry the motion.

Models: ONE VAE on the frames of all dev clips (squashed to ``--size``), *excluding every held-out
frame* (outer frames stay in), ``--epochs`` epochs; then, with ``--clip-steps N`` (default 100),
one model per clip, fine-tuned from it on that clip's own frames minus its held-out ones for N
optimizer steps of ``--clip-batch`` frames (the product's "VAE trained on the user's frames";
``--epochs 0`` trains them from scratch). Every model is cached under the reseq cache
(``synth-bench/``) keyed by the sha256 of its training array, its config and its parent's key,
so a second run with the same clips and settings skips training.

Run (small, to prove it works)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/synthesis.py --clips 3 --epochs 2 --clip-steps 5

Full run (defaults: 128 px, latent 128, MSE + 0.01 KL, 20 all-clip epochs of 16 frames, then
100 per-clip steps of 8 frames at lr 5e-4)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/synthesis.py --no-progress --out synthesis.json

The same with the interpolation term in the per-clip fine-tuning (about 11 more minutes)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/synthesis.py --no-progress --clip-interp 1

With the per-hole adaptation and warping-net columns as well (about 30 more minutes on one
core for the adaptation, and about 12 for training the two warping nets the first time)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/synthesis.py --no-progress --methods all

The previous setting (one 64 px model, BCE + 1.0 KL, latent 64, 100 epochs; no per-clip models)::

    ... --size 64 --latent 64 --recon bce --beta 1 --epochs 100 --batch 32 --clip-steps 0
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from reseq._util import cache_dir  # noqa: E402
from reseq.frames import load_frames  # noqa: E402
from reseq.synth import crossfade, interpolate, load_model, train_vae  # noqa: E402
from reseq.synth.interpolate import flow_interpolate  # noqa: E402
from reseq.synth.vae import CHECKPOINT_VERSION, save_checkpoint, to_tensor  # noqa: E402

METHODS = ["vae-slerp", "vae-lerp", "vae-slerp+res", "vae-slerp+comp", "no-path+comp",
           "vae-slerp+warp", "no-path+warp", "flow", "crossfade", "nearest", "oracle+comp",
           "oracle+warp", "oracle-flow"]
# per-hole test-time adaptation (opt-in with --methods: seconds per hole each)
ADAPT_METHODS = ["adapt-slerp", "adapt-slerp+comp", "adapt-no-path+comp", "adapt-z-slerp",
                 "adapt-z-slerp+comp", "adapt-z-no-path+comp"]
# the latent-conditioned warping in-betweener and its no-path ablation (opt-in with --methods)
WARP_METHODS = ["warpnet-path", "warpnet-no-path"]
ALL_METHODS = METHODS + ADAPT_METHODS + WARP_METHODS
DEFAULT = "vae-slerp+comp"  # what `reseq vae interpolate` and `--synthesize` produce
# clips whose leave-out cases were looked at while choosing the composite render and its
# tau / sigma (2026-11-29); the other clips were not
TUNED = ["cart_synfig_eye_open", "cyc_kenney_robot_walk", "cyc_kivy_cube", "nat_bikes_b",
         "nat_city_a", "px_pingus_bomber", "r3d_earth_a"]


def windows(n: int, gap: int, k: int) -> list[int]:
    """Start indices of ``k`` windows of ``gap + 1`` frames spread evenly over ``n`` frames."""
    last = n - gap - 1
    if last < 0:
        return []
    starts = np.round(np.linspace(0, last, k + 2)[1:-1]).astype(int) if k > 0 else []
    return sorted(set(int(s) for s in starts))


def make_cases(clips: dict[str, np.ndarray], per_clip: int) -> list[dict]:
    cases = []
    for name, arr in clips.items():
        n = len(arr)
        k = int(np.clip(n // 16, 1, per_clip))
        for gap in (2, 4):
            for s in windows(n, gap, k):
                cases.append({"clip": name, "gap": gap, "start": s,
                              "held": list(range(s + 1, s + gap))})
    return cases


def squash(arr: np.ndarray, size: int) -> np.ndarray:
    t = to_tensor(arr, size)
    return (t * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def train_or_load(train: np.ndarray, cfg: dict, cache: Path, show: bool,
                  init=None, init_key: str = "", times: np.ndarray | None = None
                  ) -> tuple[object, dict]:
    """Train (or fine-tune ``init``) on ``train``, cached by data, config and ``init_key``.

    ``cfg["interp"]`` (present only when > 0, so that older cache keys stay valid) adds the
    VAE's interpolation term, with ``times`` the frames' indices in their clip."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(train).tobytes())
    h.update(str(train.shape).encode())
    h.update(json.dumps({**cfg, "checkpoint_version": CHECKPOINT_VERSION, "init": init_key},
                        sort_keys=True).encode())
    key = h.hexdigest()[:20]
    path = cache / f"vae-{key}.pt"
    info = {"cache_key": key, "model_path": str(path), "n_train": len(train)}
    if path.exists():
        model = load_model(path)
        info.update(cached=True, train_seconds=model.checkpoint["extra"].get("train_seconds"),
                    history=model.checkpoint["history"])
        return model, info
    t0 = time.perf_counter()
    result = train_vae(train, size=cfg["size"], latent=cfg["latent"], epochs=cfg["epochs"],
                       batch=cfg["batch"], lr=cfg["lr"], beta=cfg["beta"], recon=cfg["recon"],
                       perceptual=cfg["perceptual"], seed=cfg["seed"],
                       interp=cfg.get("interp", 0.0), times=times, span=cfg.get("span", 4.0),
                       show_progress=show, init=init)
    secs = time.perf_counter() - t0
    save_checkpoint(path, result.model, None, cfg["epochs"], result.history, cfg["seed"],
                    force=True, extra={"train_seconds": secs, "benchmark": "synthesis"})
    info.update(cached=False, train_seconds=secs, history=result.history)
    return result.model, info


def uptime() -> str:
    """The 1-minute load average (the machine is shared; timings depend on it)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def guided(model, a: np.ndarray, b: np.ndarray, steps: int, render: str,
           guide: str, truth: np.ndarray | None = None) -> np.ndarray:
    """``render`` ("composite" or "warp") of :func:`reseq.synth.interpolate.render_from_guides`
    with other guides than the decoded slerp in-betweens ``D(z_t)``:

    * ``guide="no-path"`` -- the cross-fade ``(1-t) D(z0) + t D(z1)`` of the two
      reconstructions: the ablation, what the render owes to the latent path itself;
    * ``guide="oracle"`` -- the reconstructions ``D(E(x))`` of the held-out true frames
      ``truth``: what a *perfect* latent path could give through this decoder (an upper bound,
      not a method: it looks at the answer).
    """
    from reseq.synth import decode, encode
    from reseq.synth.interpolate import render_from_guides

    hw = a.shape[:2]
    size = model.config.size
    work = tuple(max(1, round(x * size / max(hw))) for x in hw)
    rec = decode(model, encode(model, np.stack([a, b])), out_hw=work).astype(np.float32)
    t = np.arange(1, steps + 1) / (steps + 1)
    if guide == "no-path":
        mids = np.stack([(1 - ti) * rec[0] + ti * rec[1] for ti in t])
    elif guide == "oracle":
        mids = decode(model, encode(model, truth), out_hw=work)
    else:
        raise ValueError(guide)
    return render_from_guides(a, b, rec[0], rec[1], mids, t, render=render, sigma=size / 64)


def oracle_flow(a: np.ndarray, b: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The warp render with flows measured from the *true* held-out frames to ``a`` and ``b``
    (sharp, no VAE): how good warping the endpoints could be if the motion were known. An upper
    bound, not a method."""
    from reseq.synth.interpolate import render_from_guides

    t = np.arange(1, len(truth) + 1) / (len(truth) + 1)
    return render_from_guides(a, b, a, b, truth, t, render="warp")


def adapt_pair(model, a: np.ndarray, b: np.ndarray, steps: int = 200, lr: float = 1e-3,
               codes: bool = False, code_lr: float = 1e-2, train: str = "decoder",
               perceptual: float = 0.0, seed: int = 0) -> tuple[object, np.ndarray, float]:
    """Per-hole test-time fine-tuning: a copy of ``model`` fitted to the two endpoints alone.

    ``steps`` Adam steps (``lr``) on the mean absolute error between the decoded codes and
    ``a``, ``b`` (squashed to the model's size), plus ``perceptual`` times their AlexNet LPIPS
    (:func:`reseq.synth.vae.perceptual_loss`). ``train="decoder"`` fits only the decoder, the
    codes being the encoder means (encoder frozen); ``"all"`` the encoder too. With ``codes``
    the two codes are free parameters as well (``code_lr``), initialised at the encoder means.
    Returns ``(adapted model, codes (2, dim) float32, seconds)``; deterministic for ``seed``.
    """
    import copy

    from torch.nn import functional as F

    from reseq.synth.vae import perceptual_loss

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    m = copy.deepcopy(model)
    m.eval()
    x = to_tensor(np.stack([a, b]), m.config.size)
    with torch.no_grad():
        mu = m.encode(x)[0]
    dec = [*m.fc_dec.parameters(), *m.decoder.parameters()]
    params = list(m.parameters()) if train == "all" else dec
    for p in m.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    groups = [{"params": params, "lr": lr}]
    z = torch.nn.Parameter(mu.clone()) if codes else None
    if z is not None:
        groups.append({"params": [z], "lr": code_lr})
    opt = torch.optim.Adam(groups)
    for _ in range(steps):
        zz = z if z is not None else (m.encode(x)[0] if train == "all" else mu)
        xh = m.decode(zz)
        loss = F.l1_loss(xh, x)
        if perceptual > 0:
            loss = loss + perceptual * perceptual_loss(xh, x) / len(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for p in m.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        zf = z.detach() if z is not None else m.encode(x)[0]
    return m, zf.numpy().astype(np.float32), time.perf_counter() - t0


def adapted(method: str, model, a: np.ndarray, b: np.ndarray, steps: int,
            memo: dict, opts: dict) -> np.ndarray:
    """The ``adapt-*`` methods: slerp between the two endpoint codes of the per-hole adapted
    model (:func:`adapt_pair`, once per hole and variant, kept in ``memo``), then decoded
    (``adapt-slerp``), composited as the default render does (``adapt-slerp+comp``), or the
    composite's ablation with the cross-fade of the adapted reconstructions as the guide
    (``adapt-no-path+comp``). ``adapt-z-*``: the two codes are optimised as well."""
    from reseq.synth import decode
    from reseq.synth.interpolate import render_from_guides, slerp

    codes = method.startswith("adapt-z-")
    if codes not in memo:
        memo[codes] = adapt_pair(model, a, b, codes=codes, **opts)
    m, z, _ = memo[codes]
    t = np.arange(1, steps + 1) / (steps + 1)
    path = slerp(z[0].astype(np.float64), z[1].astype(np.float64), t).astype(np.float32)
    hw = a.shape[:2]
    if method.endswith("-slerp"):
        return decode(m, path, out_hw=hw)
    size = m.config.size
    work = tuple(max(1, round(x * size / max(hw))) for x in hw)
    rec = decode(m, z, out_hw=work)
    if method.endswith("no-path+comp"):
        rf = rec.astype(np.float32)
        guides = np.stack([(1 - ti) * rf[0] + ti * rf[1] for ti in t])
    else:
        guides = decode(m, path, out_hw=work)
    return render_from_guides(a, b, rec[0], rec[1], guides, t, render="composite",
                              sigma=size / 64)


def synthesize(method: str, model, a: np.ndarray, b: np.ndarray, steps: int,
               truth: np.ndarray | None = None, memo: dict | None = None,
               adapt_opts: dict | None = None) -> np.ndarray:
    """In-betweens at ``a``'s size from the outer frames ``a``, ``b`` (all methods get the same;
    only the ``oracle+`` bounds also see ``truth``).

    The VAE encodes ``a`` and ``b`` as given (squashed to its size). An earlier version gave it
    512 px copies and resized them back with Lanczos, a different resampling from the truth's:
    that alone cost the residual render about 0.005 LPIPS.
    """
    hw = a.shape[:2]
    renders = {"vae-slerp": ("slerp", "decode"), "vae-lerp": ("lerp", "decode"),
               "vae-slerp+res": ("slerp", "residual"), "vae-slerp+comp": ("slerp", "composite"),
               "vae-slerp+warp": ("slerp", "warp")}
    if method in renders:
        path, render = renders[method]
        return interpolate(model, a, b, steps, method=path, out_hw=hw, render=render)
    if method.startswith(("no-path+", "oracle+")):
        guide, render = method.split("+")
        render = {"comp": "composite", "warp": "warp"}[render]
        return guided(model, a, b, steps, render, guide, truth)
    if method.startswith("adapt-"):
        return adapted(method, model, a, b, steps, {} if memo is None else memo,
                       adapt_opts or {})
    if method == "flow":
        return flow_interpolate(a, b, steps)
    if method == "oracle-flow":
        return oracle_flow(a, b, truth)
    if method == "crossfade":
        return crossfade(a, b, steps)
    if method == "nearest":
        t = np.arange(1, steps + 1) / (steps + 1)
        return np.stack([a if ti <= 0.5 else b for ti in t])
    raise ValueError(method)


# ---------------------------------------------------------------------------------------------
# Latent-conditioned warping in-betweener (opt-in: --methods warpnet-path,warpnet-no-path)

FLOW_MAX = 0.5  # flows are bounded to +-FLOW_MAX grid units (a quarter of the frame)
WARP_SIZE = 64  # the network's working size (inputs squashed to WARP_SIZE x WARP_SIZE)
# (span n, position m) of the training tuples (i, i+m, i+n): triplets (i, i+j, i+2j), j = 1, 2,
# and the quarter frames of quintuples (i, i+j, .., i+4j), j = 1, 2
WARP_TUPLES = [(2, 1), (4, 2), (4, 1), (4, 3), (8, 2), (8, 6)]


class WarpNet(torch.nn.Module):
    """A small U-Net: ``(N, 16, 64, 64)`` inputs (A, B, their reconstructions, the guide, t)
    -> two backward flows (t->A, t->B, normalised grid units) and a blend-mask logit, added to
    the cross-fade's ``logit(1 - t)`` so that an untrained net is the cross-fade."""

    def __init__(self, cin: int = 16, w: int = 16):
        super().__init__()
        nn = torch.nn

        def block(i, o, stride=1, convs=2):
            layers = [nn.Conv2d(i, o, 3, stride, 1), nn.LeakyReLU(0.1)]
            for _ in range(convs - 1):
                layers += [nn.Conv2d(o, o, 3, 1, 1), nn.LeakyReLU(0.1)]
            return nn.Sequential(*layers)

        self.e1 = block(cin, w, convs=1)            # 64
        self.e2 = block(w, 2 * w, 2)                # 32
        self.e3 = block(2 * w, 3 * w, 2)            # 16
        self.e4 = block(3 * w, 4 * w, 2)            # 8
        self.d3 = block(7 * w, 3 * w)               # 16
        self.d2 = block(5 * w, 2 * w)               # 32
        self.d1 = block(3 * w, w, convs=1)          # 64
        self.head = nn.Conv2d(w, 5, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.nn import functional as F

        def up(a, b):
            return torch.cat([F.interpolate(a, size=b.shape[-2:], mode="bilinear",
                                            align_corners=False), b], 1)
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        e4 = self.e4(e3)
        d3 = self.d3(up(e4, e3))
        d2 = self.d2(up(d3, e2))
        return self.head(self.d1(up(d2, e1)))


def warp_render(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor
                ) -> torch.Tensor:
    """Apply the net's output ``out`` (N, 5, h, w) to frames ``a``, ``b`` (N, 3, H, W) in
    [0, 1] at any size: flows and mask upsampled (bilinear; flows are in normalised units, so
    they need no scaling), ``M * warp(a) + (1 - M) * warp(b)`` with ``grid_sample``."""
    from torch.nn import functional as F

    h, w = a.shape[-2:]
    if out.shape[-2:] != (h, w):
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[None]  # (1, h, w, 2): x, y
    flow = FLOW_MAX * torch.tanh(out[:, 0:4] / FLOW_MAX)  # bounded: no runaway flows
    wa = F.grid_sample(a, base + flow[:, 0:2].permute(0, 2, 3, 1), mode="bilinear",
                       padding_mode="border", align_corners=False)
    wb = F.grid_sample(b, base + flow[:, 2:4].permute(0, 2, 3, 1), mode="bilinear",
                       padding_mode="border", align_corners=False)
    tt = t.view(-1, 1, 1, 1).clamp(1e-3, 1 - 1e-3)
    m = torch.sigmoid(out[:, 4:5] + torch.log((1 - tt) / tt))
    return m * wa + (1 - m) * wb


def warp_guides(model, frames: np.ndarray, pairs: np.ndarray, t: np.ndarray, guide: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """Reconstructions ``(N, 64, 64, 3)`` of ``frames`` and the guide of each (a, b, t) of
    ``pairs`` / ``t``: ``D(slerp(z_a, z_b; t))`` (``guide="path"``) or the cross-fade
    ``(1 - t) D(z_a) + t D(z_b)`` of the reconstructions (``"no-path"``, the ablation)."""
    from reseq.synth import decode, encode
    from reseq.synth.interpolate import slerp

    z = encode(model, frames).astype(np.float64)
    rec = decode(model, z.astype(np.float32), out_hw=(WARP_SIZE, WARP_SIZE))
    if guide == "path":
        codes = np.stack([slerp(z[i], z[j], float(ti)) for (i, j), ti in zip(pairs, t)])
        g = decode(model, codes.astype(np.float32), out_hw=(WARP_SIZE, WARP_SIZE))
    elif guide == "no-path":
        tt = t.reshape(-1, 1, 1, 1)
        g = ((1 - tt) * rec[pairs[:, 0]].astype(np.float32)
             + tt * rec[pairs[:, 1]].astype(np.float32)).round().astype(np.uint8)
    else:
        raise ValueError(guide)
    return rec, g


def _small(arr: np.ndarray) -> torch.Tensor:
    return to_tensor(arr, WARP_SIZE)


def warp_input(x: torch.Tensor, rec: torch.Tensor, g: torch.Tensor, ia, ib, t: torch.Tensor
               ) -> torch.Tensor:
    """Stack the net's 16 input channels from 64 px tensors (frames x, reconstructions rec,
    guides g) for endpoint indices ``ia``, ``ib``."""
    tmap = t.view(-1, 1, 1, 1).expand(-1, 1, WARP_SIZE, WARP_SIZE)
    return torch.cat([x[ia], x[ib], rec[ia], rec[ib], g, tmap], 1)


def train_warpnet(eval_frames: dict, models: dict, held: dict, guide: str, args,
                  model_keys: dict) -> tuple[WarpNet, dict]:
    """One global :class:`WarpNet` over all clips, trained (seeded Adam, L1 at 64 px) on
    tuples of *training* frames only (:data:`WARP_TUPLES`; every frame of a tuple is outside
    the held-out set), with ``guide`` ("path" or "no-path") as its guide input; cached."""
    from torch.nn import functional as F

    xs, recs, gs, ia, ib, im, ts = [], [], [], [], [], [], []
    off = 0
    for name in sorted(eval_frames):
        arr = eval_frames[name]
        n = len(arr)
        ok = [i not in held[name] for i in range(n)]
        tup = [(i, i + m, i + s) for s, m in WARP_TUPLES for i in range(n - s)
               if ok[i] and ok[i + m] and ok[i + s]]
        if not tup:
            continue
        tup = np.array(tup)
        t = (tup[:, 1] - tup[:, 0]) / (tup[:, 2] - tup[:, 0])
        rec, g = warp_guides(models[name], arr, tup[:, [0, 2]], t, guide)
        xs.append(_small(arr))
        recs.append(_small(rec))
        gs.append(_small(g))
        ia.append(tup[:, 0] + off)
        im.append(tup[:, 1] + off)
        ib.append(tup[:, 2] + off)
        ts.append(t)
        off += n
    x, rec, g = torch.cat(xs), torch.cat(recs), torch.cat(gs)
    ia, ib, im = (torch.from_numpy(np.concatenate(v)) for v in (ia, ib, im))
    t = torch.from_numpy(np.concatenate(ts)).float()
    cfg = {"guide": guide, "steps": args.warp_steps, "batch": args.warp_batch,
           "lr": args.warp_lr, "seed": args.seed, "width": args.warp_width, "v": 2}
    h = hashlib.sha256(json.dumps({**cfg, "models": model_keys,
                                   "held": {k: sorted(v) for k, v in held.items()}},
                                  sort_keys=True).encode())
    h.update(x.numpy().tobytes())
    path = cache_dir("synth-bench") / f"warpnet-{h.hexdigest()[:20]}.pt"
    net = WarpNet(w=args.warp_width)
    info = {"tuples": len(t), "frames": len(x), **cfg}
    if path.exists():
        ck = torch.load(path, weights_only=True)
        net.load_state_dict(ck["state"])
        info.update(cached=True, seconds=float(ck["seconds"]), history=ck["history"])
        return net.eval(), info
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    opt = torch.optim.Adam(net.parameters(), lr=args.warp_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.warp_steps)
    hist, run = [], 0.0
    t0 = time.perf_counter()
    net.train()
    for step in range(args.warp_steps):
        k = torch.from_numpy(rng.integers(0, len(t), args.warp_batch))
        a_, b_, tt = ia[k], ib[k], t[k]
        swap = torch.from_numpy(rng.random(len(k)) < 0.5)  # (b, a, 1 - t): same guide
        a_, b_ = torch.where(swap, b_, a_), torch.where(swap, a_, b_)
        tt = torch.where(swap, 1 - tt, tt)
        inp = warp_input(x, rec, g[k], a_, b_, tt)
        xa, xb, target = x[a_], x[b_], x[im[k]]
        if rng.random() < 0.5:  # horizontal flip of the whole sample
            inp, xa, xb, target = (v.flip(-1) for v in (inp, xa, xb, target))
        loss = F.l1_loss(warp_render(net(inp), xa, xb, tt), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        run += loss.item()
        if (step + 1) % 100 == 0:
            hist.append(run / 100)
            run = 0.0
            if not args.no_progress:
                print(f"#   warpnet {guide} step {step + 1}: L1 {hist[-1]:.4f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    secs = time.perf_counter() - t0
    torch.save({"state": net.state_dict(), "seconds": secs, "history": hist, "config": cfg},
               path)
    info.update(cached=False, seconds=secs, history=hist)
    return net.eval(), info


@torch.no_grad()
def warpnet_synth(net: WarpNet, model, a: np.ndarray, b: np.ndarray, steps: int, guide: str
                  ) -> np.ndarray:
    """In-betweens at ``a``'s size: the net sees 64 px inputs, its flows and mask are
    upsampled and applied to the real endpoints at their own size."""
    t = np.arange(1, steps + 1) / (steps + 1)
    pairs = np.array([[0, 1]] * steps)
    rec, g = warp_guides(model, np.stack([a, b]), pairs, t, guide)
    x, r, gg = _small(np.stack([a, b])), _small(rec), _small(g)
    tt = torch.from_numpy(t).float()
    zeros, ones = torch.zeros(steps, dtype=torch.long), torch.ones(steps, dtype=torch.long)
    out = net(warp_input(x, r, gg, zeros, ones, tt))
    full = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float() / 255
    y = warp_render(out, full[zeros], full[ones], tt)
    return (y.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def model_config(args: argparse.Namespace) -> dict:
    """The all-clip model's training settings (part of its cache key)."""
    return {k: getattr(args, k) for k in ("size", "latent", "epochs", "batch", "lr", "beta",
                                          "perceptual", "seed", "recon")}


def prepare(args: argparse.Namespace) -> tuple[list[str], dict, list[dict], dict, dict, dict]:
    """Clips, leave-out cases and the (cached) models: ``(names, eval_frames, cases, models,
    info, clip_info)``; prints the training summary."""
    clips_dir = Path(args.clips_dir)
    names = sorted(d.name for d in clips_dir.iterdir() if d.is_dir())
    if args.only:
        names = [n for n in names if n in set(args.only.split(","))]
    if args.clips:
        names = names[:args.clips]
    eval_frames = {n: load_frames(clips_dir / n, size=args.eval_size, progress=False).array
                   for n in names}
    cases = make_cases(eval_frames, args.per_clip)
    held = {n: set() for n in names}
    for c in cases:
        held[c["clip"]].update(c["held"])
    train_frames = {n: load_frames(clips_dir / n, size=4 * args.size, progress=False).array
                    for n in names}
    kept = {n: np.array([i for i in range(len(arr)) if i not in held[n]])
            for n, arr in train_frames.items()}
    per_clip_train = {n: squash(arr[kept[n]], args.size) for n, arr in train_frames.items()}
    train = np.concatenate(list(per_clip_train.values()))
    cfg = model_config(args)
    torch.manual_seed(args.seed)
    cache = cache_dir("synth-bench")
    print(f"# load {uptime()}")
    model, info = None, {"cache_key": "", "train_seconds": 0.0, "history": [], "cached": True}
    if args.epochs > 0:
        model, info = train_or_load(train, cfg, cache, not args.no_progress)
    print(f"# training set: {len(train)} frames of {len(names)} clips at {args.size}x{args.size} "
          f"(held-out frames excluded: {sum(len(v) for v in held.values())}); "
          f"{cfg['recon']} + {args.beta:g} KL, latent {args.latent}, perceptual {args.perceptual:g}")
    if info.get("train_seconds"):
        secs = info["train_seconds"]
        per500 = secs / len(train) * 500
        print(f"# all-clip model: {args.epochs} epochs in {secs:.0f} s "
              f"({'cached' if info['cached'] else 'trained now'}); scaled to 500 frames: "
              f"{per500:.0f} s; loss {info['history'][0]:.0f} -> {info['history'][-1]:.0f}")
    models = {n: model for n in names}
    clip_info: dict[str, dict] = {}
    if args.clip_steps > 0:
        for n in names:
            tr = per_clip_train[n]
            ccfg = {**cfg, "batch": min(args.clip_batch, len(tr)),
                    "lr": args.clip_lr or args.lr,
                    "epochs": max(1, -(-args.clip_steps * args.clip_batch // len(tr)))}
            if args.clip_interp > 0:
                ccfg.update(interp=args.clip_interp, span=args.clip_span)
            torch.manual_seed(args.seed)
            models[n], ci = train_or_load(tr, ccfg, cache, False, init=model,
                                          init_key=info["cache_key"], times=kept[n])
            clip_info[n] = {k: ci[k] for k in ("cache_key", "cached", "train_seconds", "n_train")}
            clip_info[n]["epochs"] = ccfg["epochs"]
        secs = sum(ci["train_seconds"] or 0 for ci in clip_info.values())
        print(f"# per-clip models: {args.clip_steps} steps of {args.clip_batch} frames each "
              f"({'fine-tuned from the all-clip model' if model is not None else 'from scratch'}"
              f"{f'; interpolation term {args.clip_interp:g}, span {args.clip_span:g}' if args.clip_interp > 0 else ''})"
              f", {secs:.0f} s in total for {len(names)} clips "
              f"({'cached' if all(ci['cached'] for ci in clip_info.values()) else 'trained now'})")
    elif model is None:
        raise SystemExit("nothing to evaluate: --epochs 0 and --clip-steps 0")
    print(f"# model cache key {info['cache_key']}; {len(cases)} cases; LPIPS {args.net} at long "
          f"edge {args.eval_size}\n")
    return names, eval_frames, cases, models, info, clip_info


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips-dir", default=str(ROOT.parent / "shared" / "dev-clips"))
    p.add_argument("--clips", type=int, default=0, help="use only the first N clips (0 = all)")
    p.add_argument("--per-clip", type=int, default=3, help="max cases per clip and gap")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--eval-size", type=int, default=128,
                   help="long edge for LPIPS (64 is too small for AlexNet on the 320x136 clips)")
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--beta", type=float, default=0.01)
    p.add_argument("--recon", choices=["bce", "mse"], default="mse")
    p.add_argument("--perceptual", type=float, default=0.0,
                   help="weight of the LPIPS term in the VAE loss (0 = off)")
    p.add_argument("--clip-steps", type=int, default=100,
                   help="then train one model per clip on its own frames (minus the held-out "
                        "ones) for this many optimizer steps, fine-tuning the all-clip model "
                        "(or from scratch with --epochs 0); 0 = no per-clip models")
    p.add_argument("--clip-batch", type=int, default=8, help="mini-batch of the per-clip runs")
    p.add_argument("--clip-lr", type=float, default=5e-4, help="per-clip learning rate")
    p.add_argument("--clip-interp", type=float, default=0.0,
                   help="weight of the VAE's interpolation term in the per-clip runs: decode the "
                        "slerp of two training frames' codes and compare with the frame between "
                        "them (held-out frames are never used); 0 = off")
    p.add_argument("--clip-span", type=float, default=4.0,
                   help="interpolation term: triples of frames at most this many frames apart")
    p.add_argument("--only", help="comma-separated clip names to use")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--net", default="alex,vgg", help="LPIPS network(s), comma-separated")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated subset of: " + ", ".join(ALL_METHODS) + " (default: "
                        "all but the adapt- and warpnet- ones; 'all' = every method)")
    p.add_argument("--adapt-steps", type=int, default=200,
                   help="adapt- methods: Adam steps of per-hole fine-tuning on the two endpoints")
    p.add_argument("--adapt-lr", type=float, default=1e-3, help="adapt- methods: learning rate")
    p.add_argument("--adapt-code-lr", type=float, default=1e-2,
                   help="adapt-z- methods: learning rate of the two free latent codes")
    p.add_argument("--adapt-train", choices=["decoder", "all"], default="decoder",
                   help="adapt- methods: fine-tune the decoder only, or encoder and decoder")
    p.add_argument("--adapt-perceptual", type=float, default=0.0,
                   help="adapt- methods: weight of an AlexNet LPIPS term next to the L1 one")
    p.add_argument("--warp-steps", type=int, default=2000,
                   help="warpnet- methods: Adam steps of the global warping net")
    p.add_argument("--warp-batch", type=int, default=16, help="warpnet- methods: mini-batch")
    p.add_argument("--warp-lr", type=float, default=1e-3, help="warpnet- methods: learning rate")
    p.add_argument("--warp-width", type=int, default=16, help="warpnet- methods: base width")
    p.add_argument("--out", help="write all results as JSON here")
    p.add_argument("--csv", help="write per-case rows as CSV here")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    from reseq.features import lpips_pair

    t_start = time.perf_counter()
    chosen = set(ALL_METHODS) if args.methods == "all" else set(args.methods.split(","))
    unknown = chosen - set(ALL_METHODS)
    if unknown:  # before any model is loaded or trained
        raise SystemExit(f"unknown method(s): {', '.join(sorted(unknown))}")
    methods = [m for m in ALL_METHODS if m in chosen]
    names, eval_frames, cases, models, info, clip_info = prepare(args)
    cfg = model_config(args)
    nets = [n.strip() for n in args.net.split(",") if n.strip()]
    adapt_opts = {"steps": args.adapt_steps, "lr": args.adapt_lr, "code_lr": args.adapt_code_lr,
                  "train": args.adapt_train, "perceptual": args.adapt_perceptual,
                  "seed": args.seed}
    for m in (DEFAULT, "crossfade", "nearest"):
        if m not in methods:
            methods.append(m)
    warpnets, warp_info = {}, {}
    if any(m in WARP_METHODS for m in methods):
        held = {n: set() for n in names}
        for c in cases:
            held[c["clip"]].update(c["held"])
        keys = {n: clip_info.get(n, {}).get("cache_key", info["cache_key"]) for n in names}
        for m in WARP_METHODS:
            if m in methods:
                guide = m.removeprefix("warpnet-")
                warpnets[m], warp_info[m] = train_warpnet(eval_frames, models, held, guide,
                                                          args, keys)
                wi = warp_info[m]
                print(f"# {m}: {wi['tuples']} training tuples of {wi['frames']} frames, "
                      f"{wi['steps']} steps of {wi['batch']} in {wi['seconds']:.0f} s "
                      f"({'cached' if wi['cached'] else 'trained now'}); L1 "
                      f"{wi['history'][0] if wi['history'] else float('nan'):.4f} -> "
                      f"{wi['history'][-1] if wi['history'] else float('nan'):.4f}")
    rows = []
    for c in cases:
        arr = eval_frames[c["clip"]]
        s, gap = c["start"], c["gap"]
        a, b = arr[s], arr[s + gap]
        truth = arr[s + 1:s + gap]
        memo: dict = {}
        synth = {m: warpnet_synth(warpnets[m], models[c["clip"]], a, b, gap - 1,
                                  m.removeprefix("warpnet-")) if m in warpnets else
                 synthesize(m, models[c["clip"]], a, b, gap - 1, truth, memo, adapt_opts)
                 for m in methods}
        secs = {f"adapt_seconds{'_z' if k else ''}": v[2] for k, v in memo.items()}
        for net in nets:
            row = {"clip": c["clip"], "gap": gap, "start": s, "net": net, **secs}
            for m in methods:
                row[m] = float(np.mean([lpips_pair(x, y, net)
                                        for x, y in zip(synth[m], truth, strict=True)]))
            rows.append(row)

    summary: dict[str, dict] = {}
    for net in nets:
        for gap in (2, 4):
            sel = [r for r in rows if r["gap"] == gap and r["net"] == net]
            if not sel:
                continue
            print(f"## gap {gap}, LPIPS {net}: {len(sel)} cases (mean LPIPS of the held-out "
                  "frame(s); lower is better)\n")
            print("| clip | " + " | ".join(methods) + " |")
            print("|---|" + "---:|" * len(methods))
            for clip in names:
                cr = [r for r in sel if r["clip"] == clip]
                if cr:
                    print(f"| {clip} | " + " | ".join(f"{np.mean([r[m] for r in cr]):.3f}"
                                                      for m in methods) + " |")
            means = {m: float(np.mean([r[m] for r in sel])) for m in methods}
            print("| **mean** | " + " | ".join(f"**{means[m]:.3f}**" for m in methods) + " |")
            wins = {m: float(np.mean([r[m] < r["crossfade"] for r in sel])) for m in methods
                    if m != "crossfade"}
            print("| beats crossfade | " + " | ".join(
                "–" if m == "crossfade" else f"{wins[m]:.0%}" for m in methods) + " |\n")
            near = float(np.mean([r[DEFAULT] < r["nearest"] for r in sel]))
            fresh = [r for r in sel if r["clip"] not in TUNED]
            fresh_win = float(np.mean([r[DEFAULT] < r["crossfade"] for r in fresh])) if fresh \
                else float("nan")
            summary[f"{net}/gap{gap}"] = {"cases": len(sel), "mean": means,
                                          "fraction_beating_crossfade": wins,
                                          "default_beats_nearest": near,
                                          "default_beats_crossfade_untuned_clips": fresh_win,
                                          "untuned_cases": len(fresh)}
            def w(m, wins=wins):
                return f"{wins[m]:.0%}" if m in wins else "n/a"

            print(f"gap {gap} ({net}): pure-decode VAE slerp beats the cross-fade in "
                  f"{w('vae-slerp')} of {len(sel)} cases; slerp+residual {w('vae-slerp+res')}; "
                  f"slerp+composite (the default) {w(DEFAULT)} ({fresh_win:.0%} of the "
                  f"{len(fresh)} cases of clips not used for tuning), and it beats the nearest "
                  f"frame in {near:.0%}; the composite without the latent path "
                  f"{w('no-path+comp')}; slerp+warp {w('vae-slerp+warp')}, without the latent "
                  f"path {w('no-path+warp')}; classic flow (no VAE) {w('flow')}\n")
            if all(m in methods for m in WARP_METHODS):
                h2h = float(np.mean([r["warpnet-path"] < r["warpnet-no-path"] for r in sel]))
                summary[f"{net}/gap{gap}"]["warpnet_path_beats_no_path"] = h2h
                print(f"gap {gap} ({net}), warping net: with the latent path {w('warpnet-path')}"
                      f" of the holes beat the cross-fade, without it {w('warpnet-no-path')}; "
                      f"head to head the path wins {h2h:.0%}\n")
            if any(m.startswith("adapt-") for m in methods):
                print(f"gap {gap} ({net}), per-hole adaptation ({args.adapt_steps} steps): "
                      f"decoded slerp {w('adapt-slerp')}, composite {w('adapt-slerp+comp')}, "
                      f"its no-path ablation {w('adapt-no-path+comp')}; with the codes "
                      f"optimised: decoded {w('adapt-z-slerp')}, composite "
                      f"{w('adapt-z-slerp+comp')}, no path {w('adapt-z-no-path+comp')}\n")

    for key, label in (("adapt_seconds", "decoder"), ("adapt_seconds_z", "decoder + codes")):
        secs = [r[key] for r in rows if key in r and r["net"] == nets[0]]
        if secs:
            print(f"# per-hole adaptation ({label}, {args.adapt_steps} steps, "
                  f"train {args.adapt_train}): {np.mean(secs):.1f} s per hole "
                  f"(max {np.max(secs):.1f}) over {len(secs)} holes")

    total = time.perf_counter() - t_start
    print(f"# total {total:.0f} s (training, synthesis and LPIPS); load {uptime()}")
    if args.out:
        Path(args.out).write_text(json.dumps({"config": {**cfg, **{
            k: getattr(args, k) for k in ("clip_steps", "clip_batch", "clip_lr", "eval_size",
                                          "clip_interp", "clip_span", "methods",
                                          "adapt_steps", "adapt_lr", "adapt_code_lr",
                                          "adapt_train", "adapt_perceptual")}},
            "training": {k: v for k, v in info.items() if k != "history"},
            "warpnet": warp_info,
            "per_clip": clip_info, "loss_history": info.get("history"), "seconds": total,
            "summary": summary, "cases": rows}, indent=1))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
