"""reseq: resequence animation frames along a perceptual (LPIPS) manifold.

The pipeline, one module per stage::

    frames      load_frames(source) -> Frames          (folder, video, GIF/APNG/WebP, sample:NAME)
    features    deep features (AlexNet / VGG16) and the LPIPS embedding
    distances   distance_matrix(frames, metric, net) -> N x N float64
    sketches    sketch(frames, net, d, seed) -> N x d float32 (approximate LPIPS, at scale)
    graph       order / loop / minimum_spanning_tree / inbetweens / outliers on a precomputed D
    layouts     2-D positions of the frames (linear strip, radial spokes, grid, MST map)
    sequences   chaining and sampling loops, subsets, smooth sub-sequences
    render      MP4 / GIF / PNG sequence / index / contact sheet writers
    synth       VAE, slerp, gap filling
    evaluate    the paper's reconstruction experiment and its baselines

Public names are imported lazily so that ``import reseq`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ReseqError": "errors",
    "Frames": "frames",
    "load_frames": "frames",
    "distance_matrix": "distances",
    "lpips_embedding": "features",
    "order": "graph",
    "loop": "graph",
    "minimum_spanning_tree": "graph",
    "inbetweens": "graph",
    "outliers": "graph",
    "sketch": "sketches",
    "sketch_source": "sketches",
    "SparseDistances": "graph",
    "layout": "layouts",
    "chain_loop": "sequences",
    "sample_cycle": "sequences",
    "sample_evenly": "sequences",
    "subsequences": "sequences",
    "kendall_tau_distance": "evaluate",
    "slerp": "synth",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reseq' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
