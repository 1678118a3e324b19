"""The AlexNet/VGG16 feature stacks reproduce the reference LPIPS v0.1 values."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from reseq.errors import ReseqError
from reseq.features import (
    feature_dim,
    layer_scales,
    layer_shapes,
    lpips_embedding,
    lpips_pair,
)


@pytest.fixture(scope="module")
def reference(shared_dir):
    folder = shared_dir / "lpips-reference"
    ims = {k: np.asarray(Image.open(folder / f"ex_{k}.png").convert("RGB")) for k in ("ref", "p0", "p1")}
    return ims, json.loads((folder / "expected.json").read_text())["distances"]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_reference_values_per_pair(reference, net):
    ims, expected = reference
    for pair, value in expected[net].items():
        a, b = pair.split("-")
        assert lpips_pair(ims[a], ims[b], net) == pytest.approx(value, abs=1e-4)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_reference_values_through_embedding(reference, net):
    ims, expected = reference
    emb = lpips_embedding(np.stack([ims["ref"], ims["p0"], ims["p1"]]), net).astype(np.float64)
    idx = {"ref": 0, "p0": 1, "p1": 2}
    for pair, value in expected[net].items():
        a, b = (idx[k] for k in pair.split("-"))
        assert float(((emb[a] - emb[b]) ** 2).sum()) == pytest.approx(value, abs=1e-4)


def test_layer_shapes_match_network_outputs():
    from reseq.features import load_network, to_network_input

    x = np.zeros((1, 72, 128, 3), np.uint8)
    for net in ("alex", "vgg"):
        outs = load_network(net)(to_network_input(x))
        assert [tuple(o.shape[1:]) for o in outs] == layer_shapes(net, 72, 128)
        assert feature_dim(net, 72, 128) == sum(int(np.prod(o.shape[1:])) for o in outs)


def test_lpips_weights_are_nonnegative_and_zero_channels_dropped():
    scales = layer_scales("alex", 64, 64)
    assert np.all(scales >= 0)
    assert np.any(scales == 0)  # AlexNet v0.1 has channels with w_c = 0
    x = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert lpips_embedding(x, "alex").shape[1] == int((scales > 0).sum())


def test_too_small_frames_and_unknown_net_are_user_errors():
    with pytest.raises(ReseqError, match="too small"):
        layer_shapes("vgg", 8, 8)
    with pytest.raises(ReseqError, match="unknown network"):
        layer_shapes("resnet", 64, 64)
