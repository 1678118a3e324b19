"""Interpolation between latent codes, and in-between frames decoded from them.

Spherical linear interpolation (slerp) moves along the great circle between two codes::

    slerp(z0, z1; t) = sin((1 - t) a) / sin a * z0 + sin(t a) / sin a * z1

with ``a`` the angle between ``z0`` and ``z1``. For codes drawn from a high-dimensional standard
normal prior it keeps the norm of the path near the typical norm, where a straight line (lerp)
would pass through the low-probability region near the origin. When ``z0`` and ``z1`` are nearly
collinear (``sin a`` tiny) the formula is ill-conditioned and we fall back to linear
interpolation.

:func:`interpolate` encodes two real frames, interpolates their latent means and decodes the
in-betweens; the real frames themselves stay at the two ends (they are sharper than their
reconstructions). :func:`through` chains several frames.

Decoded frames are blurry (a small VAE reconstructs 128 px frames about 0.15 - 0.3 AlexNet
LPIPS from the truth), so by default (``render="composite"``) the decoded in-between is not
shown itself: it decides, pixel by pixel, which of the two real frames shows there
(:func:`composite_weights`), and the pixels come from the real frames. ``render="residual"``
adds the cross-faded reconstruction errors of the endpoints to the decoded frame instead, and
``render="decode"`` returns the decoded frame as it is.

``render="warp"`` tries to let the latent path say *where* things are at time ``t`` while the
real frames say what they look like: dense optical flow (:func:`optical_flow`, OpenCV's DIS)
from the endpoints' reconstructions to ``D(z_t)``, the real frames backward-warped by it
(:func:`backward_warp`), then composited. It is not the default: on the dev clips' gap-4
leave-out holes it is worse than the composite and than the cross-fade on AlexNet, and no
better than its own ablation with the latent path taken out (``benchmarks/synthesis.py``; the
numbers are in :mod:`reseq.synth`). The VAE's reconstructions are too blurry for flow: even
the reconstruction of the *true* middle frame as the guide leaves the warp near the
cross-fade, while flow from the true frame itself would nearly halve its error.
:func:`render_from_guides` does both guided renders for any guide pictures (the benchmark's
ablations and bounds); :func:`flow_interpolate` is classic flow interpolation without a model.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ReseqError

if TYPE_CHECKING:
    from .vae import VAE

__all__ = ["COMPOSITE_TAU", "RENDERS", "backward_warp", "composite_weights", "crossfade",
           "flow_interpolate", "interpolate", "lerp", "optical_flow", "render_from_guides", "slerp",
           "through"]

_METHODS = ("slerp", "lerp")
RENDERS = ("composite", "warp", "residual", "decode")
COMPOSITE_TAU = 0.03


def _cv2():
    """OpenCV, an optional dependency (``pip install 'reseq[flow]'``) of the flow renders."""
    try:
        import cv2
    except ImportError:
        raise ReseqError("optical flow (render 'warp', flow interpolation) needs OpenCV: "
                         "pip install 'reseq[flow]' (opencv-python-headless)") from None
    return cv2


def _prepare(z0, z1, t):
    z0 = np.asarray(z0, dtype=np.float64)
    z1 = np.asarray(z1, dtype=np.float64)
    if z0.shape != z1.shape or z0.ndim != 1:
        raise ReseqError(f"latent codes must be two vectors of the same length, got "
                         f"{z0.shape} and {z1.shape}")
    scalar = np.ndim(t) == 0
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))[:, None]
    return z0, z1, t, scalar


def lerp(z0: np.ndarray, z1: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Linear interpolation ``(1 - t) z0 + t z1``; ``t`` a scalar or a 1-d array (one row each).

    >>> lerp([0.0, 2.0], [2.0, 0.0], [0.0, 0.5])
    array([[0., 2.],
           [1., 1.]])
    """
    z0, z1, t, scalar = _prepare(z0, z1, t)
    out = (1.0 - t) * z0 + t * z1
    return out[0] if scalar else out


def slerp(z0: np.ndarray, z1: np.ndarray, t: float | np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Spherical linear interpolation; linear when ``sin(angle) < eps`` (nearly collinear).

    ``t`` is a scalar (returns one vector) or a 1-d array (returns one row per value). The angle
    is taken between the directions of ``z0`` and ``z1``, so for unit vectors the path stays on
    the unit sphere; for others the norm varies smoothly between the two norms.

    >>> import numpy as np
    >>> np.round(slerp([1.0, 0.0], [0.0, 1.0], [0.0, 0.5, 1.0]), 4)
    array([[1.    , 0.    ],
           [0.7071, 0.7071],
           [0.    , 1.    ]])
    >>> slerp([1.0, 0.0], [2.0, 0.0], 0.5)          # collinear: linear fallback
    array([1.5, 0. ])
    """
    z0, z1, t, scalar = _prepare(z0, z1, t)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 == 0 or n1 == 0:
        out = (1.0 - t) * z0 + t * z1
        return out[0] if scalar else out
    cos = float(np.clip(np.dot(z0, z1) / (n0 * n1), -1.0, 1.0))
    alpha = np.arccos(cos)
    sin_a = np.sin(alpha)
    if sin_a < eps:
        out = (1.0 - t) * z0 + t * z1
    else:
        out = (np.sin((1.0 - t) * alpha) / sin_a) * z0 + (np.sin(t * alpha) / sin_a) * z1
    return out[0] if scalar else out


def _path(z0, z1, t, method):
    if method == "slerp":
        return slerp(z0, z1, t)
    if method == "lerp":
        return lerp(z0, z1, t)
    raise ReseqError(f"unknown interpolation method {method!r}; use one of {', '.join(_METHODS)}")


def interpolate(model: VAE, a: np.ndarray, b: np.ndarray, steps: int, method: str = "slerp",
                out_hw: tuple[int, int] | None = None, render: str = "composite") -> np.ndarray:
    """``steps`` in-betweens of frames ``a`` and ``b`` (``(H, W, 3)`` uint8 each).

    ``a`` and ``b`` may differ in size; each is encoded at its own resolution (give them at
    a higher resolution than ``out_hw`` for the best encoding). Returns ``(steps, H, W, 3)``
    uint8 at ``out_hw`` (default: ``a``'s size), for ``t = 1/(steps+1), ..., steps/(steps+1)``;
    the endpoints are not included. ``render`` turns the decoded in-between ``D(z_t)`` into a
    frame:

    * ``"composite"`` (default): every pixel is taken from the real frames, mixed per pixel
      by which endpoint's reconstruction ``D(z0)``, ``D(z1)`` the decoded in-between resembles
      there (:func:`composite_weights`); the VAE decides where each frame shows, the real
      frames supply the detail (sharp, little ghosting);
    * ``"warp"``: the real frames backward-warped by the optical flow from each endpoint's
      reconstruction to ``D(z_t)``, then composited (:func:`render_from_guides`): the decoded
      in-between says where things are at ``t``, the real frames what they look like;
    * ``"residual"``: ``D(z_t)`` plus the endpoints' reconstruction errors cross-faded,
      ``(1-t)(a - D(z0)) + t(b - D(z1))``;
    * ``"decode"``: ``D(z_t)`` itself (blurry).

    >>> from reseq.synth.vae import VAE, VAEConfig
    >>> a = np.zeros((20, 30, 3), np.uint8); b = np.full((20, 30, 3), 255, np.uint8)
    >>> interpolate(VAE(VAEConfig(size=16, latent=4)), a, b, steps=3).shape
    (3, 20, 30, 3)
    """
    from .vae import decode, encode

    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 3 or b.ndim != 3:
        raise ReseqError("interpolate takes two single (H, W, 3) images")
    if steps < 0:
        raise ReseqError(f"steps must be >= 0, got {steps}")
    if render not in RENDERS:
        raise ReseqError(f"unknown render {render!r}; use one of {', '.join(RENDERS)}")
    out_hw = tuple(out_hw or a.shape[:2])
    if steps == 0:
        return np.zeros((0, *out_hw, 3), np.uint8)
    _resize(a, a.shape[:2]), _resize(b, b.shape[:2])  # validate
    # encode each endpoint at its own resolution (the model squashes it to its input size)
    z0 = encode(model, a[None])[0].astype(np.float64)
    z1 = encode(model, b[None])[0].astype(np.float64)
    t = np.arange(1, steps + 1) / (steps + 1)
    path = _path(z0, z1, t, method).astype(np.float32)
    if render == "decode":
        return decode(model, path, out_hw=out_hw)
    ends = np.stack([z0, z1]).astype(np.float32)
    if render == "residual":
        a_out = _resize(a, out_hw).astype(np.float32)
        b_out = _resize(b, out_hw).astype(np.float32)
        tt = t[:, None, None, None]
        frames = decode(model, path, out_hw=out_hw).astype(np.float32)
        rec = decode(model, ends, out_hw=out_hw).astype(np.float32)
        out = frames + (1 - tt) * (a_out - rec[0]) + tt * (b_out - rec[1])
        return np.clip(out, 0, 255).round().astype(np.uint8)
    # the guides and reconstructions at the output's aspect ratio with the model's side as
    # long edge; flows and weights are resized to the output
    size = model.config.size
    work = tuple(max(1, round(x * size / max(out_hw))) for x in out_hw)
    guides = decode(model, path, out_hw=work)
    rec = decode(model, ends, out_hw=work)
    return render_from_guides(_resize(a, out_hw), _resize(b, out_hw), rec[0], rec[1], guides, t,
                              render=render, sigma=size / 64)


def render_from_guides(a: np.ndarray, b: np.ndarray, rec0: np.ndarray, rec1: np.ndarray,
                       guides: np.ndarray, t: np.ndarray, render: str = "composite",
                       sigma: float = 2.0) -> np.ndarray:
    """In-betweens of the real frames ``a``, ``b`` placed by guide images, ``(len(t), H, W, 3)``.

    ``a``, ``b``: the real endpoints, ``(H, W, 3)`` uint8; ``rec0``, ``rec1``: their
    reconstructions and ``guides``: one picture of each in-between (normally the decoded
    ``D(z_t)``), all with values in [0, 255] (uint8 or float) at one working size ``(h, w)``
    (any; flows and weights are resized to ``(H, W)``). Putting a cross-fade of ``rec0`` and
    ``rec1`` in ``guides`` instead is the ablation that takes the latent path out. ``render``:

    * ``"composite"``: per pixel ``w a + (1 - w) b`` with ``w`` from :func:`composite_weights`
      of the guide against ``rec0`` and ``rec1``;
    * ``"warp"``: dense optical flow from the guide to ``rec0`` and to ``rec1`` (DIS,
      :func:`optical_flow`; reconstruction to reconstruction, so both sides have the same
      blur), ``a`` and ``b`` backward-warped by it (:func:`backward_warp`), then composited as
      above with the warped reconstructions as evidence.

    At ``t = 0`` a guide equal to ``rec0`` gives ``a`` exactly (zero flow, weight 1); at
    ``t = 1`` one equal to ``rec1`` gives ``b``.

    >>> a = np.zeros((16, 16, 3), np.uint8); b = np.full((16, 16, 3), 90, np.uint8)
    >>> rec = np.stack([a, b])
    >>> out = render_from_guides(a, b, a, b, rec, [0.0, 1.0], render="warp")
    >>> out[0].max(), out[1].min()
    (np.uint8(0), np.uint8(90))
    """
    if render not in ("composite", "warp"):
        raise ReseqError(f"unknown guided render {render!r}; use composite or warp")
    a, b = np.asarray(a), np.asarray(b)
    hw = a.shape[:2]
    if b.shape != a.shape:
        raise ReseqError(f"endpoints differ in shape: {a.shape} and {b.shape}")
    t = np.asarray(t, np.float64).ravel()
    guides = np.asarray(guides)
    rec0, rec1 = np.asarray(rec0), np.asarray(rec1)
    if len(guides) != len(t) or guides.shape[1:] != rec0.shape or rec0.shape != rec1.shape:
        raise ReseqError("guides and reconstructions must share one (h, w, 3) size, one guide "
                         "per t")
    af, bf = a.astype(np.float64), b.astype(np.float64)
    g01 = guides.astype(np.float64) / 255
    r0, r1 = rec0.astype(np.float64) / 255, rec1.astype(np.float64) / 255
    if render == "composite":
        w = _snap(_resize_weights(composite_weights(g01, r0, r1, t, sigma=sigma), hw))[..., None]
        out = w * af + (1 - w) * bf
        return np.clip(out, 0, 255).round().astype(np.uint8)
    g8, r08, r18 = (np.clip(x, 0, 255).round().astype(np.uint8) for x in (guides, rec0, rec1))
    out = np.empty((len(t), *hw, 3))
    for i, ti in enumerate(t):
        f0 = optical_flow(g8[i], r08)
        f1 = optical_flow(g8[i], r18)
        w = composite_weights(g01[i][None], backward_warp(r0, f0).astype(np.float64),
                              backward_warp(r1, f1).astype(np.float64), [ti], sigma=sigma)
        w = _snap(_resize_weights(w, hw)[0])[..., None]
        wa = backward_warp(af, _resize_flow(f0, hw))
        wb = backward_warp(bf, _resize_flow(f1, hw))
        out[i] = w * wa + (1 - w) * wb
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _snap(w: np.ndarray) -> np.ndarray:
    """Weights rounded to 1e-6, in float64: where the evidence is even (``e_0 = e_1`` up to
    float error) the mix is then exactly the cross-fade's, pixel for pixel after rounding."""
    return np.round(np.asarray(w, np.float64), 6)


def optical_flow(ref: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow ``f`` (``(h, w, 2)``, x then y, pixels) with ``ref(p) ~ target(p + f(p))``.

    OpenCV's DIS optical flow (medium preset) on the grey levels of two ``(h, w, 3)`` uint8
    images: what :func:`backward_warp` needs to pull ``target`` onto ``ref`` (zero for images
    under 12 pixels on both sides, too small for DIS). Measured on the
    dev clips' leave-out holes against Farneback (OpenCV) and TV-L1 / iterative Lucas-Kanade
    (scikit-image) it gave the best in-betweens, and takes a few milliseconds at 128 px.

    >>> img = np.zeros((32, 32, 3), np.uint8); img[8:16, 8:16] = 255
    >>> optical_flow(img, img).max()
    np.float32(0.0)
    """
    cv2 = _cv2()

    ref, target = np.asarray(ref), np.asarray(target)
    if ref.shape != target.shape or ref.ndim != 3:
        raise ReseqError(f"optical flow needs two (h, w, 3) images of one size, got {ref.shape} "
                         f"and {target.shape}")
    if max(ref.shape[:2]) < 12:
        return np.zeros((*ref.shape[:2], 2), np.float32)
    cv2.setNumThreads(1)
    g0 = cv2.cvtColor(np.ascontiguousarray(ref, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(np.ascontiguousarray(target, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(g0, g1, None)


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``p + flow(p)`` (bilinear, edges repeated), as float32.

    >>> img = np.arange(12, dtype=np.float32).reshape(3, 4, 1).repeat(3, -1)
    >>> f = np.zeros((3, 4, 2), np.float32); f[..., 0] = 1          # look one pixel right
    >>> backward_warp(img, f)[0, :, 0]
    array([1., 2., 3., 3.], dtype=float32)
    """
    cv2 = _cv2()

    flow = np.asarray(flow, np.float32)
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(np.asarray(image, np.float32), gx + flow[..., 0], gy + flow[..., 1],
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _resize_flow(flow: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    h, w = flow.shape[:2]
    if (h, w) == tuple(hw):
        return flow
    cv2 = _cv2()

    out = cv2.resize(flow, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= hw[1] / w
    out[..., 1] *= hw[0] / h
    return out


def flow_interpolate(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Classic optical-flow in-betweens without any model, ``(steps, H, W, 3)`` uint8.

    Flows ``a -> b`` and ``b -> a`` on the real frames (:func:`optical_flow`); the flows from
    time ``t`` back to each endpoint approximated from them as in Super SloMo (Jiang et al.
    2018), ``F_t0 = -(1-t) t F_01 + t^2 F_10`` and ``F_t1 = (1-t)^2 F_01 - t (1-t) F_10``; both
    frames backward-warped and cross-faded ``(1-t), t``. The baseline that the VAE renders
    have to beat to claim that a latent path knows about motion.

    >>> a = np.zeros((16, 16, 3), np.uint8)
    >>> flow_interpolate(a, a, 2).shape
    (2, 16, 16, 3)
    """
    a = _resize(a, np.asarray(a).shape[:2])  # checks (H, W, 3) uint8; same size: unchanged
    b = np.asarray(b)
    if b.shape != a.shape:
        raise ReseqError(f"endpoints differ in shape: {a.shape} and {b.shape}")
    f01, f10 = optical_flow(a, b), optical_flow(b, a)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    out = []
    for ti in np.arange(1, steps + 1) / (steps + 1):
        ft0 = -(1 - ti) * ti * f01 + ti * ti * f10
        ft1 = (1 - ti) ** 2 * f01 - ti * (1 - ti) * f10
        out.append((1 - ti) * backward_warp(af, ft0) + ti * backward_warp(bf, ft1))
    if not out:
        return np.zeros((0, *a.shape), np.uint8)
    return np.clip(np.stack(out), 0, 255).round().astype(np.uint8)


def composite_weights(mids: np.ndarray, rec0: np.ndarray, rec1: np.ndarray, t: np.ndarray,
                      tau: float = COMPOSITE_TAU, sigma: float = 2.0) -> np.ndarray:
    """Per-pixel weight of the first endpoint for each decoded in-between, ``(steps, h, w)``.

    ``mids`` are the decoded in-betweens ``D(z_t)``, ``rec0``/``rec1`` the endpoints'
    reconstructions (float images in [0, 1]). With ``e_k`` the squared colour difference
    between ``D(z_t)`` and ``rec_k``, Gaussian-smoothed (``sigma`` pixels), the weight is a
    softmax of ``log(1 - t) - e_0 / tau`` against ``log(t) - e_1 / tau``: where both
    reconstructions match the in-between equally (static parts) it is the cross-fade's
    ``1 - t``; where the in-between looks like one endpoint, that endpoint wins.

    >>> z = np.zeros((1, 4, 4, 3)); o = np.ones((4, 4, 3))
    >>> composite_weights(z, z[0], o, np.array([0.5]))[0, 0, 0].round(3)   # looks like rec0
    np.float64(1.0)
    >>> composite_weights(z, z[0], z[0], np.array([0.25]))[0, 0, 0].round(6)  # no evidence
    np.float64(0.75)
    """
    from scipy.ndimage import gaussian_filter

    mids = np.asarray(mids, np.float64)
    t = np.asarray(t, np.float64).ravel()
    out = np.empty(mids.shape[:3])
    for i, (m, ti) in enumerate(zip(mids, t, strict=True)):
        e0 = gaussian_filter(((m - rec0) ** 2).sum(-1), sigma)
        e1 = gaussian_filter(((m - rec1) ** 2).sum(-1), sigma)
        with np.errstate(divide="ignore"):  # t = 0 or 1: that endpoint everywhere
            d = (np.log(ti) - e1 / tau) - (np.log1p(-ti) - e0 / tau)
        out[i] = 1.0 / (1.0 + np.exp(np.clip(d, -50, 50)))
    return out


def _resize_weights(w: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if w.shape[1:] == tuple(hw):
        return w
    import torch
    from torch.nn import functional as F

    t = F.interpolate(torch.from_numpy(w[:, None]).float(), size=tuple(hw), mode="bilinear",
                      align_corners=False)
    return t[:, 0].clamp(0, 1).numpy()


def through(model: VAE, images: np.ndarray, steps: int, method: str = "slerp",
            render: str = "composite") -> tuple[np.ndarray, np.ndarray]:
    """Chain ``images[0] -> images[1] -> ...`` with ``steps`` in-betweens per pair.

    Returns ``(frames, synthetic)``: the real images at their places with the decoded frames
    between them (all at ``images[0]``'s size), and a boolean mask of the decoded ones.

    >>> from reseq.synth.vae import VAE, VAEConfig
    >>> imgs = np.zeros((3, 16, 16, 3), np.uint8)
    >>> frames, synthetic = through(VAE(VAEConfig(size=16, latent=4)), imgs, steps=2)
    >>> frames.shape[0], synthetic.astype(int).tolist()
    (7, [0, 1, 1, 0, 1, 1, 0])
    """
    if len(images) < 2:
        raise ReseqError("need at least two images to interpolate through")
    out_hw = tuple(np.asarray(images[0]).shape[:2])
    real = [_resize(np.asarray(im), out_hw) for im in images]
    frames, mask = [real[0]], [False]
    for a, b in itertools.pairwise(real):
        mids = interpolate(model, a, b, steps, method=method, out_hw=out_hw, render=render)
        frames += [*mids, b]
        mask += [True] * len(mids) + [False]
    return np.stack(frames), np.array(mask, dtype=bool)


def crossfade(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Pixel cross-fade in-betweens ``(1-t) a + t b`` (the baseline), ``(steps, H, W, 3)`` uint8.

    >>> crossfade(np.zeros((1, 1, 3), np.uint8), np.full((1, 1, 3), 200, np.uint8), 3)[:, 0, 0, 0]
    array([ 50, 100, 150], dtype=uint8)
    """
    t = (np.arange(1, steps + 1) / (steps + 1))[:, None, None, None]
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.clip((1 - t) * a + t * b, 0, 255).round().astype(np.uint8)


def _resize(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ReseqError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if image.shape[:2] == tuple(hw):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.LANCZOS))
