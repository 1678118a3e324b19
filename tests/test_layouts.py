"""Layouts of an unordered collection (paper §5.4.1, Figs. 9 and 10) and their pictures."""

from __future__ import annotations

import itertools
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from reseq import layout
from reseq.errors import ReseqError
from reseq.layouts import STYLES, neighbourhood_score, random_score, tsne_score
from reseq.render import layout_geometry, layout_picture


@pytest.fixture(scope="module")
def cards():
    """The sample:cards collection (68 different playing cards) at 48 px, and its LPIPS."""
    from reseq import distance_matrix, load_frames
    from reseq.assets import sample_source

    frames = load_frames(sample_source("cards"), size=48, progress=False)
    return frames, distance_matrix(frames, progress=False)


@pytest.fixture(scope="module")
def layouts(cards):
    _, D = cards
    return {s: layout(D, s) for s in STYLES}


def test_every_style_places_every_frame(cards, layouts):
    _frames, D = cards
    n = len(D)
    assert n == 68
    for style, lay in layouts.items():
        assert lay.style == style and lay.positions.shape == (n, 2)
        assert lay.positions.min() >= 0 and lay.positions.max() <= 1 + 1e-12
        assert len({tuple(p) for p in np.round(lay.positions, 9)}) == n, style  # no two stacked
        assert lay.score == pytest.approx(D[lay.neighbours[:, 0], lay.neighbours[:, 1]].mean())
        assert lay.score < 0.7 * random_score(D), style  # similar cards sit together
        ident = neighbourhood_score(D, lay, np.arange(n))
        assert ident == pytest.approx(lay.score)


def test_linear_neighbours_follow_the_path(cards, layouts):
    _, D = cards
    lay = layouts["linear"]
    rows, cols = lay.grid_shape
    assert rows * cols >= len(D) > (rows - 1) * cols
    seq = lay.order
    assert sorted(seq.tolist()) == list(range(len(D)))
    steps = np.abs(np.diff(lay.cells[seq], axis=0)).sum(axis=1)
    assert (steps == 1).all()  # serpentine: every step of the path is to a neighbouring cell
    assert lay.cells[seq[0]].tolist() == [0, 0]
    assert lay.score == pytest.approx(D[seq[:-1], seq[1:]].mean())
    from reseq import order

    assert lay.order.tolist() == order(D).order.tolist()  # default effort below 500 frames


def test_grid_and_radial_structure(cards, layouts):
    _, D = cards
    g = layouts["grid"]
    rows, cols = g.grid_shape
    cells = {tuple(c) for c in g.cells.tolist()}
    assert len(cells) == len(D) and all(0 <= r < rows and 0 <= c < cols for r, c in cells)
    r = layouts["radial"]
    from reseq.graph import minimum_spanning_tree

    tree = {frozenset((a, b)) for a, b, _ in minimum_spanning_tree(D)}
    flat = np.concatenate(r.spokes).tolist()
    assert sorted([*flat, r.centre]) == list(range(len(D)))  # spokes partition the rest
    for sp in r.spokes:  # each spoke a smooth sequence along tree edges, ordered outwards
        assert all(frozenset((int(a), int(b))) in tree for a, b in itertools.pairwise(sp))
        rad = np.hypot(*(r.positions[sp] - r.positions[r.centre]).T)
        assert (np.diff(rad) > 0).all()


def test_tsne_reference_scores(cards, layouts):
    _, D = cards
    t = tsne_score(D, layouts["grid"])
    assert t < random_score(D)


@pytest.mark.parametrize("style", STYLES)
def test_pictures_draw_the_layout_positions(cards, layouts, tmp_path, style):
    frames, D = cards
    lay = layouts[style]
    labels = frames.labels
    xy, _tw, _th, W, H = layout_geometry(lay, frames.array.shape[1:3], 32)
    # PNG
    png = layout_picture(tmp_path / "l.png", lay, frames.array, labels, thumb=32)
    with Image.open(png) as im:
        im.load()
        assert im.width == W and W <= 8192 and im.height >= H
    # SVG: every thumbnail where the layout puts it, with its label as tooltip
    svg = layout_picture(tmp_path / "l.svg", lay, frames.array, labels, thumb=32)
    ns = {"s": "http://www.w3.org/2000/svg"}
    imgs = ET.parse(svg).getroot().findall(".//s:image", ns)
    assert len(imgs) == len(D)
    got = np.zeros((len(D), 2))
    for el in imgs:
        i = int(el.get("data-index"))
        got[i] = float(el.get("x")), float(el.get("y"))
        assert el.find("s:title", ns).text == labels[i]
        assert el.get("href").startswith("data:image/jpeg;base64,")
    for axis in (0, 1):  # pixel = offset + scale * position, the same scale on both axes
        a, b = np.polyfit(lay.positions[:, axis], got[:, axis], 1)
        assert np.abs(got[:, axis] - (a * lay.positions[:, axis] + b)).max() <= 1.0
    assert got == pytest.approx(xy)
    # HTML
    page = layout_picture(tmp_path / "l.html", lay, frames.array, labels, thumb=32)
    text = page.read_text()
    found = re.findall(r'data-index="(\d+)" style="left:(\d+)px;top:(\d+)px"', text)
    assert len(found) == len(D)
    for i, x, y in found:
        assert (int(x), int(y)) == tuple(xy[int(i)])
    assert f'title="{labels[0]}"' in text
    with pytest.raises(ReseqError, match="already exists"):
        layout_picture(tmp_path / "l.svg", lay, frames.array, labels)


def test_thumbnails_shrink_to_fit(cards, layouts):
    frames, _ = cards
    for lay in layouts.values():
        xy, tw, th, W, H = layout_geometry(lay, frames.array.shape[1:3], 96, max_side=400)
        assert max(W, H) <= 400 and max(tw, th) < 96
        assert xy.min() >= 0 and (xy[:, 0] + tw).max() <= W and (xy[:, 1] + th).max() <= H


def test_unknown_style_and_small_inputs():
    with pytest.raises(ReseqError, match="style"):
        layout(np.zeros((3, 3)), "spiral")
    for style in STYLES:
        one = layout(np.zeros((1, 1)), style)
        assert one.positions.shape == (1, 2)
        two = layout(np.array([[0.0, 1.0], [1.0, 0.0]]), style)
        assert two.positions.shape == (2, 2) and two.score == pytest.approx(1.0)


def test_cli_layout(run_cli, dev_clips, tmp_path):
    out = tmp_path / "grid.svg"
    r = run_cli("layout", str(dev_clips / "cyc_kivy_cube"), "--size", "48", "--style", "grid",
                "-o", str(out), "--thumb", "24", "--json", str(tmp_path / "places.json"))
    assert r.returncode == 0, r.stderr
    assert "neighbourhood score" in r.stdout
    doc = json.loads((tmp_path / "places.json").read_text())
    assert doc["style"] == "grid" and len(doc["frames"]) == 63
    assert doc["score"] < doc["random_score"]
    assert ET.parse(out).getroot().tag.endswith("svg")
    r = run_cli("layout", str(dev_clips / "cyc_kivy_cube"), "--size", "48", "-o", str(out))
    assert r.returncode != 0 and r.stderr.startswith("reseq: error:") and "exists" in r.stderr
    r = run_cli("layout", str(dev_clips / "cyc_kivy_cube"), "-o", str(tmp_path / "x.jpg"))
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and ".png" in r.stderr
