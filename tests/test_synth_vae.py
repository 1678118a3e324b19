"""VAE training, checkpoints and the `reseq vae` commands, on real dev-clip frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from reseq.cli import main
from reseq.errors import ReseqError
from reseq.synth import (
    decode,
    encode,
    fill_gaps,
    interpolate,
    load_model,
    load_training_frames,
    through,
    train_vae,
)
from reseq.synth.vae import CHECKPOINT_VERSION

CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "dev-clips"
ROBOT = CLIPS / "cyc_kenney_robot_walk"
PINGUS = CLIPS / "cyc_pingus_walker"
ARCHER = CLIPS / "px_wes_archer_die"

EPOCHS = 10  # small: the fixture only has to train enough to make the assertions fail-able

pytestmark = pytest.mark.skipif(not CLIPS.is_dir(), reason="needs ../shared/dev-clips")


@pytest.fixture(scope="module")
def data():
    return load_training_frames([ROBOT, PINGUS, ARCHER], size=32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    images, _, classes = data
    path = tmp_path_factory.mktemp("vae") / "vae.pt"
    # BCE + 1.0 KL (not the defaults): test_training_lowers_loss measures BCE's entropy floor
    result = train_vae(images, classes=classes, size=32, latent=16, epochs=EPOCHS, batch=8,
                       lr=2e-3, beta=1.0, recon="bce", seed=0, checkpoint=path,
                       show_progress=False)
    return path, result


def test_training_frames_are_square_and_labelled(data):
    images, labels, classes = data
    assert images.shape == (8 + 8 + 13, 32, 32, 3) and images.dtype == np.uint8
    assert classes == ["cyc_kenney_robot_walk", "cyc_pingus_walker", "px_wes_archer_die"]
    assert labels.count("px_wes_archer_die") == 13


def test_training_lowers_loss(trained, data):
    _, result = trained
    h = result.history
    assert len(h) == EPOCHS
    # BCE against non-binary targets has a floor: the targets' own entropy; the excess over it
    # (reconstruction error + KL) must fall by more than half
    x = data[0].astype(np.float64) / 255
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nan_to_num(x * np.log(x)) - np.nan_to_num((1 - x) * np.log(1 - x))
    floor = ent.sum(axis=(1, 2, 3)).mean()
    assert h[-1] - floor < 0.5 * (h[0] - floor)
    # reconstructions are closer to their own frame than to the mean frame
    images = data[0]
    rec = decode(result.model, encode(result.model, images), out_hw=(32, 32)).astype(float)
    err_rec = np.abs(rec - images).mean()
    err_mean = np.abs(images.mean(axis=0) - images).mean()
    assert err_rec < err_mean


def test_training_is_deterministic_and_resume_continues_exactly(tmp_path, data):
    images, _, classes = data
    kw = dict(classes=classes, size=32, latent=8, batch=8, seed=3, show_progress=False)
    full = train_vae(images, epochs=4, checkpoint=tmp_path / "a.pt", **kw)
    again = train_vae(images, epochs=4, **kw)
    assert full.history == again.history
    train_vae(images, epochs=2, checkpoint=tmp_path / "b.pt", **kw)
    resumed = train_vae(images, epochs=4, checkpoint=tmp_path / "b.pt", resume=True, **kw)
    assert resumed.epochs_run == 2
    np.testing.assert_allclose(resumed.history, full.history, rtol=1e-6)
    for p, q in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_checkpoint_contents(trained):
    path, _ = trained
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["version"] == CHECKPOINT_VERSION and ckpt["epoch"] == EPOCHS and ckpt["size"] == 32
    assert ckpt["config"]["latent"] == 16 and ckpt["optimizer"]["state"]
    assert ckpt["classes"] == ["cyc_kenney_robot_walk", "cyc_pingus_walker", "px_wes_archer_die"]
    model = load_model(path)
    assert model.classes == ckpt["classes"] and not model.training


def test_existing_checkpoint_needs_force_or_resume(trained, data):
    path, _ = trained
    with pytest.raises(ReseqError, match="already exists"):
        train_vae(data[0], size=32, latent=16, epochs=1, checkpoint=path, show_progress=False)
    with pytest.raises(ReseqError, match="same --size"):
        train_vae(data[0], size=32, latent=8, epochs=EPOCHS + 1, checkpoint=path, resume=True,
                  show_progress=False)


def test_bad_model_files(tmp_path):
    with pytest.raises(ReseqError, match="not found"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(ReseqError, match="not a readable"):
        load_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ReseqError, match="not a reseq VAE checkpoint"):
        load_model(other)


def test_interpolate_keeps_real_endpoints(trained, data):
    path, _ = trained
    model = load_model(path)
    a, b = data[0][0], data[0][4]
    frames, synthetic = through(model, np.stack([a, b]), steps=5)
    assert len(frames) == 7 and synthetic.tolist() == [False] + [True] * 5 + [False]
    assert np.array_equal(frames[0], a) and np.array_equal(frames[-1], b)
    # slerp and lerp give different paths; residual restores detail toward a/b
    mids_s = interpolate(model, a, b, 5, render="decode").astype(float)
    mids_l = interpolate(model, a, b, 5, method="lerp", render="decode").astype(float)
    assert not np.array_equal(mids_s, mids_l)
    near_a = interpolate(model, a, b, 9, render="residual")[0].astype(float)
    assert np.abs(near_a - a).mean() < np.abs(mids_s[0] - a).mean()
    # the default composite takes every pixel from the real frames: between a and b per value,
    # exactly a (= b) where they agree, and sharper than the decoded frame
    comp = interpolate(model, a, b, 5)
    assert comp.shape == (5, *a.shape)
    lo, hi = np.minimum(a, b).astype(int) - 1, np.maximum(a, b).astype(int) + 1
    assert ((comp >= lo) & (comp <= hi)).all()
    same = (a == b).all(-1)
    assert same.any() and np.array_equal(comp[:, same], np.broadcast_to(a[same], comp[:, same].shape))
    assert np.abs(comp[0].astype(float) - a).mean() < np.abs(mids_s[0] - a).mean()
    with pytest.raises(ReseqError):
        interpolate(model, a, b, 3, method="cubic")
    with pytest.raises(ReseqError, match="render"):
        interpolate(model, a, b, 3, render="sharpen")


def test_fill_gaps_inserts_in_long_steps_only(trained, data):
    model = load_model(trained[0])
    images = data[0][:4]
    steps = np.array([0.1, 0.45, 0.2])
    new, synthetic, per_gap = fill_gaps(images, steps, model, threshold=0.2, max_insert=8)
    assert per_gap.tolist() == [0, 2, 0]
    assert len(new) == 6 and synthetic.tolist() == [False, False, True, True, False, False]
    assert np.array_equal(new[~synthetic], images)
    capped = fill_gaps(images, np.array([5.0, 5.0, 5.0]), model, threshold=0.1, max_insert=3)
    assert capped[2].tolist() == [3, 3, 3] and len(capped[0]) == 4 + 9


# ---------------------------------------------------------------------------------------------
# CLI


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_train_interpolate_demo_map(tmp_path):
    model = tmp_path / "vae.pt"
    r = _run("vae", "train", ROBOT, PINGUS, "-o", model, "--epochs", 3, "--size", 32,
             "--latent", 8, "--batch", 8)
    assert r.exit_code == 0, r.output
    assert model.is_file() and "3 epochs" in r.output
    r = _run("vae", "train", ROBOT, "-o", model, "--epochs", 1, "--size", 32)
    assert r.exit_code == 2 and "already exists" in r.output
    r = _run("vae", "train", ROBOT, PINGUS, "-o", model, "--epochs", 4, "--size", 32,
             "--latent", 8, "--batch", 8, "--resume")
    assert r.exit_code == 0, r.output
    assert torch.load(model, weights_only=True)["epoch"] == 4
    tuned = tmp_path / "tuned.pt"
    r = _run("vae", "train", ROBOT, "-o", tuned, "--from", model, "--epochs", 1, "--batch", 8)
    assert r.exit_code == 0, r.output
    assert "fine-tuning" in r.output and load_model(tuned).config.latent == 8  # the parent's
    r = _run("vae", "train", ROBOT, "-o", tuned, "--from", model, "--resume")
    assert r.exit_code == 2 and "not both" in r.output

    a, b, c = ROBOT / "0000.png", ROBOT / "0004.png", PINGUS / "0002.png"
    out, idx = tmp_path / "ab.gif", tmp_path / "ab.json"
    r = _run("vae", "interpolate", a, b, "--model", model, "--steps", 4, "-o", out, "--fps", 5,
             "--index", idx, "--size", 64, "--sheet", tmp_path / "ab.png")
    assert r.exit_code == 0, r.output
    records = json.loads(idx.read_text())
    assert [rec["synthetic"] for rec in records] == [False, True, True, True, True, False]
    assert records[0]["label"] == "0000.png" and records[-1]["label"] == "0004.png"
    steps = [rec["distance_to_next"] for rec in records]
    assert steps[-1] is None and all(0 < d < 2 for d in steps[:-1])
    from PIL import Image

    with Image.open(out) as gif:
        assert gif.n_frames == 6 and max(gif.size) == 64
    assert (tmp_path / "ab.png").is_file()

    frames_dir = tmp_path / "abc"
    r = _run("vae", "interpolate", "--through", f"{a},{b},{c}", "--model", model, "--steps", 2,
             "-o", f"{frames_dir}/", "--index", tmp_path / "abc.json", "--size", 48,
             "--render", "decode")
    assert r.exit_code == 0, r.output
    assert len(list(frames_dir.glob("*.png"))) == 3 + 2 * 2
    r = _run("vae", "interpolate", a, b, "--model", model, "-o", out)
    assert r.exit_code == 2 and "already exists" in r.output

    demo = tmp_path / "demo"
    r = _run("vae", "demo", ROBOT, PINGUS, "--model", model, "-o", demo, "--steps", 2,
             "--size", 48)
    assert r.exit_code == 0, r.output
    with Image.open(demo / "cyc_pingus_walker.gif") as gif:
        assert gif.n_frames == 7 * 3  # 7 images, 2 in-betweens each, cycling back to the first

    r = _run("vae", "map", ROBOT, PINGUS, "--model", model, "-o", tmp_path / "map.png",
             "--thumbnails")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "map.png").stat().st_size > 5000


def test_cli_bad_inputs_one_line(tmp_path):
    a, b = ROBOT / "0000.png", ROBOT / "0001.png"
    r = _run("vae", "interpolate", a, b, "--model", tmp_path / "nope.pt", "-o", tmp_path / "x.gif")
    assert r.exit_code == 2 and r.output.strip().count("\n") == 0
    assert "not found" in r.output and "Traceback" not in r.output
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02garbage")
    r = _run("vae", "interpolate", a, b, "--model", corrupt, "-o", tmp_path / "x.gif")
    assert r.exit_code == 2 and "not a readable" in r.output and "\n" not in r.output.strip()
    r = _run("vae", "train", tmp_path / "no-such-folder", "-o", tmp_path / "m.pt")
    assert r.exit_code != 0 and "Traceback" not in r.output
    r = _run("vae", "train", ROBOT, "-o", tmp_path / "m.pt", "--size", 48)
    assert r.exit_code == 2 and "power of two" in r.output


def test_perceptual_loss_is_lpips_and_trains(tmp_path, data):
    from reseq.features import load_network, lpips_pair
    from reseq.frames import load_frames
    from reseq.synth.vae import perceptual_loss, to_tensor

    # load_network caches the network built by its first caller: built under
    # torch.inference_mode (as lpips_pair does) it must still serve autograd
    load_network.cache_clear()
    with torch.inference_mode():
        lpips_pair(np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 9, np.uint8))
    frames = load_frames(ROBOT, size=64, progress=False).array[:3]
    u8 = (to_tensor(frames, 64) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    x = to_tensor(u8, 64)  # exactly the uint8 images lpips_pair sees
    got = perceptual_loss(x[:2], x[1:3]).item()
    want = lpips_pair(u8[0], u8[1]) + lpips_pair(u8[1], u8[2])
    assert got == pytest.approx(want, rel=1e-3)
    x_hat = x[:1].clone().requires_grad_(True)
    perceptual_loss(x_hat, x[1:2]).backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    r = train_vae(data[0][:8], size=32, latent=8, epochs=2, batch=4, perceptual=500.0,
                  checkpoint=tmp_path / "p.pt", show_progress=False)
    assert len(r.history) == 2 and load_model(tmp_path / "p.pt").config.perceptual == 500.0


def test_fine_tuning_starts_from_the_given_model(trained, data):
    _, result = trained
    robot = data[0][:8]
    kw = dict(size=32, latent=16, epochs=1, batch=8, lr=1e-4, beta=0.1, recon="mse",
              show_progress=False)
    tuned = train_vae(robot, init=result.model, **kw)
    scratch = train_vae(robot, **kw)
    # the trained model already reconstructs these frames: its first epoch's loss is far lower
    assert tuned.history[0] < 0.5 * scratch.history[0]
    assert tuned.model.config.beta == 0.1 and tuned.model.config.recon == "mse"
    assert result.model.config.beta == 1.0  # the original is left alone (a copy is tuned)
    assert not all(torch.equal(p, q) for p, q in
                   zip(tuned.model.parameters(), result.model.parameters(), strict=True))


def test_grid_latent_shapes_and_training(data):
    from reseq.synth import VAEConfig

    images = data[0][:8]
    r = train_vae(images, size=32, latent=4, grid=4, epochs=6, batch=8, lr=2e-3, beta=0.01,
                  recon="mse", show_progress=False)
    assert r.model.config.dim == 4 * 4 * 4 and r.history[-1] < r.history[0]
    z = encode(r.model, images)
    assert z.shape == (8, 64)
    assert decode(r.model, z[:2], out_hw=(20, 30)).shape == (2, 20, 30, 3)
    with pytest.raises(ReseqError, match="dimensions"):
        decode(r.model, z[:, :16])
    with pytest.raises(ReseqError, match="grid"):
        VAEConfig(size=32, grid=3)
    with pytest.raises(ReseqError, match="grid"):
        VAEConfig(size=32, grid=32)


def test_interpolation_term_needs_times_and_trains(data):
    from reseq.synth.vae import _triples

    images = data[0][:8]
    with pytest.raises(ReseqError, match="times"):
        train_vae(images, size=32, latent=8, epochs=1, interp=1.0, show_progress=False)
    with pytest.raises(ReseqError, match="one time per frame"):
        train_vae(images, size=32, latent=8, epochs=1, interp=1.0, times=np.arange(7),
                  show_progress=False)
    with pytest.raises(ReseqError, match="at least one triple"):
        train_vae(images, size=32, latent=8, epochs=1, interp=1.0, times=np.arange(8) * 10.0,
                  show_progress=False)
    # a hole in the times: the triple across it gets the right fraction
    rows = _triples(np.array([0.0, 1.0, 4.0]), 3, span=4.0)
    assert rows.tolist() == [[0.0, 1.0, 2.0, 0.25]]
    r = train_vae(images, size=32, latent=8, epochs=6, batch=8, lr=2e-3, beta=0.01, recon="mse",
                  times=np.arange(8), interp=1.0, show_progress=False)
    assert r.model.config.interp == 1.0 and r.history[-1] < r.history[0]
