"""The denoising autoencoder of the evaluation: shapes, training, checkpoints, resume, cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reseq.errors import ReseqError
from reseq.evaluate import dae


def test_tensor_shapes():
    model = dae.DAE().eval()
    x = torch.rand(2, 3, 180, 320)
    with torch.no_grad():
        z = model.encode(x)
        y = model(x)
    assert tuple(z.shape) == (2, 500, 9, 16)
    assert tuple(y.shape) == (2, 3, 180, 320)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0  # sigmoid output
    names = {type(m).__name__ for m in model.modules()}
    assert {"SELU", "BatchNorm2d", "Sigmoid", "_ResBlock"} <= names


def test_prepare_images_scales_any_size_to_320x180(clip_frames):
    arr = clip_frames("px_wes_archer_die", size=64).array  # 64x64 pixel art
    x = dae.prepare_images(arr)
    assert tuple(x.shape) == (len(arr), 3, 180, 320)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    with pytest.raises(ReseqError):
        dae.prepare_images(arr[..., :2])


def test_train_checkpoint_resume_and_cached_embedding(clip_frames, tmp_path, monkeypatch):
    monkeypatch.setenv("RESEQ_CACHE_DIR", str(tmp_path / "cache"))
    frames = [clip_frames("cyc_kenney_robot_walk", size=64).array,
              clip_frames("cyc_pingus_walker", size=48).array]
    cfg = dae.DAEConfig(widths=(4, 8, 8), res_blocks=1, steps=6, batch_size=4,
                        checkpoint_every=3, seed=1)
    straight = dae.train_dae(frames, tmp_path / "a.pt", cfg, show_progress=False)
    ckpt = torch.load(straight, weights_only=True)
    assert ckpt["step"] == 6 and len(ckpt["losses"]) == 6
    assert all(np.isfinite(ckpt["losses"]))
    with pytest.raises(ReseqError, match="already exists"):
        dae.train_dae(frames, straight, cfg, show_progress=False)

    half = dae.dataclasses.replace(cfg, steps=3)
    dae.train_dae(frames, tmp_path / "b.pt", half, show_progress=False)
    dae.train_dae(frames, tmp_path / "b.pt", cfg, resume=True, show_progress=False)
    a, b = dae.load_dae(straight), dae.load_dae(tmp_path / "b.pt")
    assert dae.model_hash(a) == dae.model_hash(b)  # resuming continues the same run

    with pytest.raises(ReseqError, match="other frames"):
        dae.train_dae(frames[:1], tmp_path / "b.pt", cfg, resume=True, show_progress=False)

    emb = dae.dae_embedding(a, frames[0])
    assert emb.shape == (len(frames[0]), 500 * 9 * 16) and emb.dtype == np.float32
    assert len(list((tmp_path / "cache" / "dae-embeddings").glob("*.demb"))) == 1
    np.testing.assert_array_equal(dae.dae_embedding(a, frames[0]), emb)
    D = dae.dae_distance_matrix(a, frames[0])
    assert D.shape == (8, 8) and np.all(np.diag(D) == 0) and np.all(D[~np.eye(8, dtype=bool)] > 0)


def test_bad_checkpoint(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ReseqError, match="not a reseq DAE checkpoint"):
        dae.load_dae(bad)
    with pytest.raises(ReseqError, match="does not exist"):
        dae.load_dae(tmp_path / "missing.pt")
