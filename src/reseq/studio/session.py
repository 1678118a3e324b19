"""The studio's model: one collection of frames, its distances, and every answer the page asks for.

A :class:`Session` holds the frames (:func:`reseq.frames.load_frames`) and their distance matrix
(:func:`reseq.distances.distance_matrix`) and answers in frame indices of the whole collection.
Everything it computes comes from the functional core: the map from
:func:`reseq.layouts.layout`, in-betweens from the minimum spanning tree of
:mod:`reseq.graph` (:func:`~reseq.graph.minimum_spanning_tree` and
:func:`~reseq.graph.tree_path`, the two halves of :func:`~reseq.graph.inbetweens`, with the tree
kept between clicks), outliers from :func:`~reseq.graph.outliers`, the Hamiltonian path and cycle
from :func:`~reseq.graph.order` and :func:`~reseq.graph.loop`, loops of a chosen length from
:func:`reseq.sequences.sample_cycle`, and the files from :func:`reseq.render.write_sequence`.

Excluded frames (the page's per-frame include/exclude override) leave the map where it is (the
positions are the whole collection's, so nothing jumps) but every tree, path and order is
recomputed on the frames still included.

The page's state (:func:`check_state`) is a small dict: ordered ``keys``, ``closed`` (the loop
closed back to the first key), ``swaps`` (in-betweens replaced by the user, by position),
``excluded``, the ``mode`` of the sequence shown (``keys``, ``order``, ``loop``, ``subseq``)
and its settings. The same dict is the project file's ``state``, so a project reopens exactly.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReseqError

__all__ = ["MODES", "PAD", "PROJECT_FORMAT", "Session", "check_state", "read_project"]

PAD = 0.05  # map positions are reported in [PAD, 1 - PAD]: thumbnails stay inside the box
MODES = ("keys", "order", "loop", "subseq")
PROJECT_FORMAT = "reseq-studio-project/1"
THUMB = 64  # long edge of a thumbnail in the atlases
ATLAS = 4096  # atlas side in pixels


@dataclass
class _Active:
    """Tree and paths of the frames still included (indices into the whole collection)."""

    keep: np.ndarray  # sorted global indices
    D: np.ndarray  # distances among ``keep``
    local: np.ndarray  # global index -> local index (-1 when excluded)
    tree: list[tuple[int, int, float]]  # MST edges in local indices
    order: Any = None
    cycle: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _int_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ReseqError(f"{what} must be a list of frame indices")
    return list(value)


def check_state(state: Any, n: int) -> dict:
    """A validated copy of the page's state (raises :class:`ReseqError` on anything odd)."""
    if not isinstance(state, dict):
        raise ReseqError("state must be a JSON object")
    keys = _int_list(state.get("keys", []), "keys")
    excluded = _int_list(state.get("excluded", []), "excluded")
    for i in keys + excluded:
        if not 0 <= i < n:
            raise ReseqError(f"no frame {i} (frames are 0..{n - 1})")
    if len(set(keys)) != len(keys):
        raise ReseqError("the key list names a frame twice")
    swaps_in = state.get("swaps", {})
    if not isinstance(swaps_in, dict):
        raise ReseqError("swaps must be an object {position: frame}")
    swaps = {}
    for pos, frame in swaps_in.items():
        try:
            p = int(pos)
        except (TypeError, ValueError):
            raise ReseqError("swaps must map positions to frames") from None
        if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame < n:
            raise ReseqError(f"swap to an unknown frame {frame!r}")
        swaps[str(p)] = frame
    synth_in = state.get("synth", {})
    if not isinstance(synth_in, dict):
        raise ReseqError("synth must be an object {position: count}")
    synth = {}
    for pos, count in synth_in.items():
        try:
            p = int(pos)
        except (TypeError, ValueError):
            raise ReseqError("synth must map positions to counts") from None
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 8:
            raise ReseqError("synth counts must be integers from 1 to 8")
        synth[str(p)] = count
    mode = state.get("mode", "keys")
    if mode not in MODES:
        raise ReseqError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    out = dict(state)
    out.update(keys=keys, excluded=sorted(set(excluded)), swaps=swaps, synth=synth, mode=mode,
               closed=bool(state.get("closed", False)))
    for name in ("loop_frame", "loop_length", "sub_length", "sub_pick"):
        if name in state and state[name] is not None and (
                isinstance(state[name], bool) or not isinstance(state[name], int)):
            raise ReseqError(f"{name} must be an integer")
    return out


def read_project(path: str | os.PathLike) -> dict:
    """The contents of a project file written by :meth:`Session.export` (checked)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReseqError(f"project file {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReseqError(f"cannot read project file {p}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReseqError(f"{p} is not a studio project (bad JSON: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
        raise ReseqError(f"{p} is not a studio project (expected format {PROJECT_FORMAT})")
    if not isinstance(data.get("state"), dict) or not isinstance(data.get("settings"), dict):
        raise ReseqError(f"{p} is not a studio project (no state or settings)")
    return data


class Session:
    """One collection in the studio. ``frames``: :class:`reseq.frames.Frames`; ``D``: its matrix
    (computed by :meth:`compute` when None); ``settings``: source, metric, net, size, every
    (written into project files); ``out_dir``: where exports go; ``model``: a VAE checkpoint
    path for synthesis (optional); ``state``: the initial page state (a project's)."""

    def __init__(self, frames, D: np.ndarray | None = None, *, settings: dict | None = None,
                 out_dir: str | os.PathLike = "reseq-studio-out", model: str | None = None,
                 state: dict | None = None) -> None:
        self.frames = frames
        self.n = len(frames)
        self.D = D
        self.settings = dict(settings or {})
        self.out_dir = Path(out_dir)
        self.model_path = model
        self._model = None
        self.initial_state = check_state(state or {}, self.n)
        self.ready = threading.Event()
        self.error: str | None = None
        self.stage = "loading frames"
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._layout_lock = threading.Lock()
        self._layouts: dict[str, np.ndarray] = {}
        self._edges: dict[str, list] = {}
        self._active: OrderedDict[tuple, _Active] = OrderedDict()
        self._atlases: dict[int, bytes] = {}
        self._synth: dict[tuple[int, int, int], np.ndarray] = {}
        self.outliers = None
        self.step_scale = 1.0
        self.timings: dict[str, float] = {}  # seconds per stage of compute()

    # -- set-up ----------------------------------------------------------------------------
    def compute(self, progress: bool = True) -> None:
        """Distances (from the cache when warm), the MST map, the outliers. Sets ``ready``."""
        from ..graph import check_distance_matrix, knn_scores, outliers

        t = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal t
            now = time.perf_counter()
            self.timings[name] = now - t
            t = now

        # thumbnails: built beside the distances and the layout (Pillow releases the GIL)
        thumbs = threading.Thread(target=lambda: [self.atlas(k) for k in
                                                  range(self.atlas_info()["count"])],
                                  daemon=True, name="reseq-studio-atlas")
        thumbs.start()
        try:
            if self.D is None:
                from ..distances import distance_matrix

                self.stage = "computing features and distances"
                s = self.settings
                self.D = distance_matrix(self.frames, metric=s.get("metric", "lpips"),
                                         net=s.get("net", "alex"), progress=progress)
            else:  # a matrix from the caller (distance_matrix's own needs no second look)
                self.D = check_distance_matrix(self.D, 2)
            if len(self.D) != self.n:
                raise ReseqError(f"{self.n} frames but a {len(self.D)} x {len(self.D)} matrix")
            lap("distances")
            # Two threads importing scipy's sub-packages for the first time at once can stop
            # in importlib's module locks (_DeadlockError, seen here in scipy.linalg): the
            # modules that the threads below use are imported in this thread first.
            import scipy.optimize
            import scipy.sparse.csgraph
            import scipy.spatial
            import scipy.stats  # noqa: F401

            def find_outliers() -> None:  # beside the layout: scipy's fit releases the GIL
                try:
                    self.outliers = outliers(self.D)
                except ReseqError:
                    self.outliers = None  # too few or degenerate frames: no ring on the map

            ring = threading.Thread(target=find_outliers, daemon=True, name="reseq-outliers")
            ring.start()
            tree = threading.Thread(target=self.active, args=([],), daemon=True,
                                    name="reseq-tree")
            tree.start()  # the paths' tree, beside the map layout (which builds its own)
            self.stage = "map layout"
            self.layout("mst")
            lap("layout")
            tree.join()
            lap("tree (rest)")
            self.stage = "outliers"
            self.step_scale = float(np.quantile(knn_scores(self.D, 1), 0.95)) or 1.0
            ring.join()
            lap("outliers (rest)")
            thumbs.join()
            lap("thumbnails (rest)")
            self.stage = "ready"
        except ReseqError as exc:
            self.error = str(exc)
            raise
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.ready.set()

    def status(self) -> dict:
        """What the page shows while the collection is prepared (plus any live progress bar)."""
        bars = []
        try:
            from tqdm import tqdm

            for bar in list(getattr(tqdm, "_instances", [])):
                if bar.total:
                    bars.append({"desc": str(bar.desc), "n": int(bar.n), "total": int(bar.total)})
        except Exception:  # progress is a nicety
            pass
        return {"ready": self.ready.is_set() and self.error is None, "stage": self.stage,
                "error": self.error, "progress": bars, "n": self.n}

    # -- the collection --------------------------------------------------------------------
    def labels(self) -> list[dict]:
        return [{"index": i, "label": lab} for i, lab in enumerate(self.frames.labels)]

    def info(self) -> dict:
        o = self.outliers
        h, w = self.frames.array.shape[1:3]
        return {
            "n": self.n, "width": w, "height": h, "settings": self.settings,
            "source": self.settings.get("source", ""),
            "styles": list(self._styles()),
            "outliers": [] if o is None else [int(i) for i in o.indices],
            "outlier_scores": [] if o is None else [float(x) for x in o.scores],
            "step_scale": self.step_scale,
            "synthesis": self.model_path is not None,
            "atlas": self.atlas_info(),
            "state": self.initial_state,
            "out_dir": str(self.out_dir),
        }

    @staticmethod
    def _styles() -> tuple[str, ...]:
        from ..layouts import STYLES

        return tuple(STYLES)

    def layout(self, style: str = "mst") -> tuple[np.ndarray, list]:
        """Positions (N, 2) in [PAD, 1 - PAD]² (x right, y down) and edges of a map style."""
        from ..layouts import layout

        with self._layout_lock:  # not self._lock: a slow layout must not hold up the paths
            if style not in self._layouts:
                lay = layout(self.D, style)
                pos = PAD + (1 - 2 * PAD) * np.clip(np.asarray(lay.positions, float), 0, 1)
                self._layouts[style] = pos
                self._edges[style] = [(int(a), int(b)) for a, b in lay.edges]
            return self._layouts[style], self._edges[style]

    def active(self, excluded) -> _Active:
        """Tree of the included frames (cached for the last few sets of exclusions)."""
        from ..graph import minimum_spanning_tree

        key = tuple(sorted(set(int(i) for i in excluded)))
        with self._lock:
            if key in self._active:
                self._active.move_to_end(key)
                return self._active[key]
        keep = np.setdiff1d(np.arange(self.n), np.array(key, dtype=np.intp))
        if len(keep) < 2:
            raise ReseqError("at least 2 frames must stay included")
        sub = self.D if not key else self.D[np.ix_(keep, keep)]
        local = np.full(self.n, -1, dtype=np.intp)
        local[keep] = np.arange(len(keep))
        act = _Active(keep, sub, local, minimum_spanning_tree(sub))
        with self._lock:
            self._active[key] = act
            while len(self._active) > 4:
                self._active.popitem(last=False)
        return act

    def tree_edges(self, excluded) -> list[tuple[int, int]]:
        act = self.active(excluded)
        return [(int(act.keep[a]), int(act.keep[b])) for a, b, _ in act.tree]

    def row(self, i: int) -> list[float]:
        self._check_index(i)
        return [float(x) for x in self.D[i]]

    def _check_index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.n:
            raise ReseqError(f"no frame {i!r} (frames are 0..{self.n - 1})")
        return int(i)

    # -- sequences -------------------------------------------------------------------------
    def steps(self, frames: list[int], closed: bool) -> list[float]:
        f = np.asarray(frames, dtype=np.intp)
        if len(f) < 2:
            return []
        nxt = np.roll(f, -1) if closed else f[1:]
        return [float(x) for x in self.D[f[: len(nxt)], nxt]]

    def inbetweens(self, keys: list[int], closed: bool = False, excluded=()) -> dict:
        """The MST path through ``keys`` (as ``reseq inbetween``), in global indices.

        ``closed`` goes on from the last key back to the first; the first key is then not
        repeated at the end (the player wraps around) and the last step is the closing one.
        """
        act = self.active(excluded)
        if len(set(keys)) != len(keys):
            raise ReseqError("the key list names a frame twice")
        for k in keys:
            self._check_index(k)
            if act.local[k] < 0:
                raise ReseqError(f"key frame {k} is excluded")
        if closed and len(keys) < 2:
            raise ReseqError("closing the loop needs at least 2 key frames")
        if len(keys) < 2:
            return {"frames": list(keys), "steps": [], "counts": [], "closed": False}
        from ..graph import inbetweens

        loc = [int(act.local[k]) for k in keys] + ([int(act.local[keys[0]])] if closed else [])
        ib = inbetweens(act.D, loc, tree=act.tree)
        path = ib.path[:-1] if closed else ib.path
        frames = [int(act.keep[v]) for v in path]
        return {"frames": frames, "steps": self.steps(frames, closed),
                "counts": [int(c) for c in ib.counts], "closed": closed}

    def order(self, excluded=()) -> list[int]:
        """The shortest Hamiltonian path of the included frames (computed once per set)."""
        from ..graph import order

        act = self.active(excluded)
        with act.lock:
            if act.order is None:
                seq = np.asarray(order(act.D, seed=int(self.settings.get("seed", 0))).order)
                if seq[0] > seq[-1]:
                    seq = seq[::-1]  # run the way SOURCE runs, roughly
                act.order = [int(act.keep[v]) for v in seq]
        return act.order

    def cycle(self, excluded=()) -> list[int]:
        """The shortest Hamiltonian cycle of the included frames (computed once per set)."""
        from ..graph import loop

        act = self.active(excluded)
        with act.lock:
            if act.cycle is None:
                seq = np.asarray(loop(act.D, seed=int(self.settings.get("seed", 0))).order)
                act.cycle = [int(act.keep[v]) for v in seq]
        return act.cycle

    def loop(self, frame: int | None, length: int | None, excluded=()) -> dict:
        """A loop of ``length`` frames starting at ``frame``: the Hamiltonian cycle started
        there and sampled uniformly by arc length (:func:`reseq.sequences.sample_cycle`)."""
        from ..sequences import sample_cycle

        cyc = self.cycle(excluded)
        n = len(cyc)
        if frame is None:
            frame = cyc[0]
        self._check_index(frame)
        if frame not in cyc:
            raise ReseqError(f"loop frame {frame} is excluded")
        length = n if length is None else int(length)
        if not 2 <= length <= n:
            raise ReseqError(f"a loop of the included frames has 2 to {n} frames, got {length}")
        start = cyc.index(frame)
        rolled = cyc[start:] + cyc[:start]
        frames = [int(v) for v in sample_cycle(np.asarray(rolled), self.D, length)]
        steps = self.steps(frames, closed=True)
        return {"frames": frames, "steps": steps, "closed": True, "seam": steps[-1]}

    def subsequences(self, length: int, count: int = 10, excluded=()) -> list[dict]:
        """The smoothest continuous sub-sequences of ``length`` frames (included frames)."""
        from ..sequences import subsequences

        act = self.active(excluded)
        if not 2 <= length <= len(act.keep):
            raise ReseqError(f"length must be 2 to {len(act.keep)}, got {length}")
        out = []
        # once the order is known its windows join the search (never worse than the best one)
        path = None if act.order is None else act.local[np.asarray(act.order)]
        for s in subsequences(act.D, length, count=count, path=path):
            frames = [int(act.keep[v]) for v in np.asarray(s.frames)]
            out.append({"frames": frames, "cost": float(s.cost),
                        "steps": [float(x) for x in np.asarray(s.steps)]})
        return out

    def alternatives(self, frames: list[int], position: int, closed: bool, k: int = 5,
                     excluded=()) -> list[dict]:
        """The ``k`` included frames, not yet in ``frames``, that keep both steps around
        ``frames[position]`` smallest (the distance from the previous frame plus the distance
        to the next), best first."""
        m = len(frames)
        for f in frames:
            self._check_index(f)
        if not 0 <= position < m:
            raise ReseqError(f"position {position} is outside the sequence of {m} frames")
        act = self.active(excluded)
        cost = np.zeros(len(act.keep))
        prev = position - 1 if position > 0 else (m - 1 if closed else None)
        nxt = position + 1 if position < m - 1 else (0 if closed else None)
        if prev is None and nxt is None:
            raise ReseqError("a single frame has no neighbours to fit")
        for nb in (prev, nxt):
            if nb is not None:
                cost += act.D[int(act.local[frames[nb]])]
        for f in set(frames):  # a frame already in the sequence would play twice
            if act.local[f] >= 0:
                cost[act.local[f]] = np.inf
        best = np.argsort(cost, kind="stable")[:k]
        return [{"index": int(act.keep[b]), "cost": float(cost[b])} for b in best
                if np.isfinite(cost[b])]

    def sequence(self, state: dict) -> dict:
        """The sequence the page shows for ``state`` (checked with :func:`check_state`)."""
        st = check_state(state, self.n)
        ex = st["excluded"]
        mode = st["mode"]
        if mode == "keys":
            res = self.inbetweens(st["keys"], st["closed"], ex)
            frames = list(res["frames"])
            for pos, f in st["swaps"].items():
                p = int(pos)
                if 0 <= p < len(frames):
                    frames[p] = f
            res.update(frames=frames, steps=self.steps(frames, res["closed"]))
            if st["synth"]:
                if self.model_path is None:
                    raise ReseqError("synthesized in-betweens need a VAE model (start the "
                                     "studio with --model)")
                m = len(frames)
                res["synthetic"] = [
                    {"after": p, "count": c, "a": frames[p], "b": frames[(p + 1) % m]}
                    for p, c in sorted((int(k), v) for k, v in st["synth"].items())
                    if 0 <= p < (m if res["closed"] else m - 1)]
            return res
        if mode == "order":
            frames = self.order(ex)
            return {"frames": frames, "steps": self.steps(frames, False), "closed": False}
        if mode == "loop":
            return self.loop(st.get("loop_frame"), st.get("loop_length"), ex)
        subs = self.subsequences(int(st.get("sub_length") or 12), excluded=ex)
        if not subs:
            return {"frames": [], "steps": [], "closed": False}
        pick = min(max(int(st.get("sub_pick") or 0), 0), len(subs) - 1)
        return {**subs[pick], "closed": False}

    # -- synthesis -------------------------------------------------------------------------
    def synthesize(self, a: int, b: int, count: int = 3) -> np.ndarray:
        """``count`` VAE in-betweens from frame ``a`` to frame ``b`` (:func:`fill_gaps`)."""
        if self.model_path is None:
            raise ReseqError("synthesis needs a VAE model (start the studio with --model)")
        from ..synth import fill_gaps, load_model

        self._check_index(a)
        self._check_index(b)
        if not 1 <= count <= 8:
            raise ReseqError("count must be 1 to 8")
        key = (int(a), int(b), int(count))
        with self._lock:
            if key in self._synth:
                return self._synth[key]
        if self._model is None:
            self._model = load_model(self.model_path)
        imgs = self.frames.array[[a, b]]
        step = float(self.D[a, b])
        if not step > 0:
            raise ReseqError(f"frames {a} and {b} are identical: nothing to synthesize")
        # a threshold just under the step with max_insert = count inserts exactly ``count``
        new, synthetic, _ = fill_gaps(imgs, np.array([step]), self._model,
                                      threshold=step / (count + 1) * 0.999, max_insert=count)
        out = new[synthetic]
        with self._lock:
            self._synth[key] = out
        return out

    def synth_png(self, a: int, b: int, count: int, k: int) -> bytes:
        """PNG of the ``k``-th of ``count`` synthesized in-betweens from frame a to frame b."""
        from PIL import Image

        if not 0 <= k < count:
            raise ReseqError(f"no synthesized frame {k} of {count}")
        buf = io.BytesIO()
        Image.fromarray(self.synthesize(a, b, count)[k]).save(buf, "PNG", compress_level=1)
        return buf.getvalue()

    # -- pictures --------------------------------------------------------------------------
    def thumb_size(self) -> tuple[int, int]:
        h, w = self.frames.array.shape[1:3]
        s = THUMB / max(h, w)
        return max(1, round(w * s)), max(1, round(h * s))

    def atlas_info(self) -> dict:
        tw, th = self.thumb_size()
        cols = ATLAS // tw
        rows = ATLAS // th
        per = cols * rows
        return {"cell_w": tw, "cell_h": th, "cols": cols, "per_atlas": per,
                "count": -(-self.n // per)}

    def atlas(self, k: int) -> bytes:
        """JPEG atlas ``k``: thumbnails of frames ``k * per_atlas ...`` row by row."""
        from PIL import Image

        info = self.atlas_info()
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < info["count"]:
            raise ReseqError(f"no atlas {k!r}")
        with self._lock:
            if k in self._atlases:
                return self._atlases[k]
        tw, th, cols, per = info["cell_w"], info["cell_h"], info["cols"], info["per_atlas"]
        idx = range(k * per, min(self.n, (k + 1) * per))
        rows = -(-len(idx) // cols)
        sheet = Image.new("RGB", (cols * tw if rows > 1 else len(idx) * tw, rows * th), "white")
        for j, i in enumerate(idx):
            im = Image.fromarray(self.frames.array[i]).resize((tw, th), Image.Resampling.BILINEAR)
            sheet.paste(im, ((j % cols) * tw, (j // cols) * th))
        buf = io.BytesIO()
        sheet.save(buf, "JPEG", quality=85)
        data = buf.getvalue()
        with self._lock:
            self._atlases[k] = data
        return data

    def frame_png(self, i: int) -> bytes:
        from PIL import Image

        i = self._check_index(i)
        buf = io.BytesIO()
        Image.fromarray(self.frames.array[i]).save(buf, "PNG", compress_level=1)
        return buf.getvalue()

    # -- export ----------------------------------------------------------------------------
    def project(self, state: dict) -> dict:
        st = check_state(state, self.n)
        return {"format": PROJECT_FORMAT, "settings": self.settings, "n_frames": self.n,
                "labels": list(self.frames.labels), "state": st}

    def _unique_stem(self, kind: str) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for k in itertools.count(1):
            stem = f"studio-{stamp}" + (f"-{k}" if k > 1 else "")
            names = [f"{stem}.{kind}" if kind != "png" else stem, f"{stem}.json",
                     f"{stem}.reseq-project.json"]
            if not any((self.out_dir / nm).exists() for nm in names):
                return stem
        raise AssertionError  # pragma: no cover

    def export(self, state: dict, kind: str = "mp4", fps: float = 12.0) -> dict:
        """Write the sequence of ``state`` into the output folder under a new name: the video
        (``mp4``/``gif``) or PNG folder, the JSON index, and the project file."""
        from ..render import write_sequence

        if kind not in ("mp4", "gif", "png"):
            raise ReseqError(f"unknown export format {kind!r}; mp4, gif or png")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 120:
            raise ReseqError("fps must be a number in (0, 120]")
        seq = self.sequence(state)
        frames = seq["frames"]
        if not frames:
            raise ReseqError("nothing to export: pick key frames first")
        steps: list[float | None] = list(seq["steps"])
        if not seq["closed"]:
            steps.append(None)
        labels = [self.frames.labels[i] for i in frames]
        extra: list[dict] = [{"source_index": int(i)} for i in frames]
        images = self.frames.array[frames]
        if seq.get("synthetic"):
            images, labels, steps, extra = self._with_synthetic(seq, images, labels, steps,
                                                                extra)
        with self._export_lock:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            stem = self._unique_stem(kind)
            target = self.out_dir / (f"{stem}.{kind}" if kind != "png" else f"{stem}/")
            index = self.out_dir / f"{stem}.json"
            written = write_sequence(str(target), images, labels, steps,
                                     fps=float(fps), index=index, extra=extra)
            proj = self.out_dir / f"{stem}.reseq-project.json"
            from .._util import atomic_path

            with atomic_path(proj) as tmp:
                tmp.write_text(json.dumps(self.project(state), indent=1) + "\n", encoding="utf-8")
        files = [str(p) for p in written] + [str(proj)]
        return {"files": files, "frames": len(images)}

    def _with_synthetic(self, seq, images, labels, steps, extra):
        """Insert the synthesized in-betweens of ``seq["synthetic"]`` (distances to and from a
        synthesized frame are not measured: None in the index)."""
        after = {g["after"]: g for g in seq["synthetic"]}
        out_img, out_lab, out_step, out_extra = [], [], [], []
        for p in range(len(images)):
            out_img.append(images[p])
            out_lab.append(labels[p])
            out_extra.append(extra[p])
            g = after.get(p)
            if g is None:
                out_step.append(steps[p])
                continue
            out_step.append(None)
            made = self.synthesize(g["a"], g["b"], g["count"])
            for k, im in enumerate(made):
                out_img.append(im)
                out_lab.append(f"synthetic {k + 1}/{g['count']} {labels[p]} -> "
                               f"{self.frames.labels[g['b']]}")
                out_extra.append({"source_index": None, "synthetic": True})
                out_step.append(None)
        if not seq["closed"]:
            out_step[-1] = None
        return np.stack(out_img), out_lab, out_step, out_extra
