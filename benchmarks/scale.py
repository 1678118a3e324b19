"""Scaling reseq past the dense matrix: sketch accuracy, and time / peak RSS per stage.

    # sketch accuracy against exact LPIPS on real frames (bunny + dev clips), by sketch length d
    PYTHONPATH=src python benchmarks/scale.py accuracy --frames 600 --size 128
    # time and peak RSS per stage, sparse pipeline vs dense, on N real frames (long_video)
    PYTHONPATH=src python benchmarks/scale.py stages --n 5000 --size 64
    # the sequencing stage alone on synthetic video-like sketches (random walks with shot cuts)
    PYTHONPATH=src python benchmarks/scale.py synthetic --n 100000 --d 256
    # the dev-clip evaluation (reseq evaluate's protocol): mean Kendall tau, dense vs sparse
    PYTHONPATH=src python benchmarks/scale.py kendall --size 256 --every 1 2 3 --d 256 1024
    # the sketch stage from a video file: decoded here, as in-process tasks, on a local cluster
    PYTHONPATH=src python benchmarks/scale.py dask --n 5000 --size 64 --workers 2
    # nearest neighbours: exact vs the IVF index (recall, time, peak RSS), real and 10^6 synthetic
    PYTHONPATH=src python benchmarks/scale.py knn --real 20000 --synthetic 1000000

``accuracy``: the LPIPS embedding of every frame is computed once; the exact matrix is its Gram
matrix (:func:`reseq.distances.squared_euclidean`), the sketches are the embedding times
:func:`reseq.sketches.projection` (the same arithmetic as :func:`reseq.sketches.sketch`). Printed:
median and 90th-percentile relative error of the pair distances, the mean signed relative
error (bias), and the recall of the 10 nearest neighbours.

``stages`` and ``synthetic`` run each stage in a fresh subprocess so that its peak RSS
(``ru_maxrss`` of the child) is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _recall(D_true: np.ndarray, D_est: np.ndarray, k: int = 10) -> float:
    n = len(D_true)
    A, B = D_true.copy(), D_est.copy()
    np.fill_diagonal(A, np.inf)
    np.fill_diagonal(B, np.inf)
    t = np.argpartition(A, k, axis=1)[:, :k]
    e = np.argpartition(B, k, axis=1)[:, :k]
    return float(np.mean([len(set(t[i]) & set(e[i])) / k for i in range(n)]))


def accuracy(args) -> None:
    from frame_pool import real_frames
    from reseq.distances import squared_euclidean
    from reseq.features import lpips_embedding
    from reseq.sketches import projection

    frames, _ = real_frames(args.size)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(frames), size=min(args.frames, len(frames)), replace=False))
    frames = frames[idx]
    t0 = time.perf_counter()
    E = np.concatenate([lpips_embedding(frames[s:s + 16], args.net)
                        for s in range(0, len(frames), 16)])
    t_emb = time.perf_counter() - t0
    D = squared_euclidean(E)
    iu = np.triu_indices(len(D), 1)
    exact = D[iu]
    ok = exact > 1e-9
    print(f"{len(frames)} real frames (bunny + dev clips, {args.size} px, every frame then a "
          f"seeded sample), net {args.net}, embedding {E.shape[1]} floats "
          f"({t_emb:.1f} s), {ok.sum()} pairs")
    print("| d | median rel. err | p90 rel. err | bias (mean signed) | 10-NN recall "
          "| projection s |")
    print("|---|---|---|---|---|---|")
    for d in args.d:
        t0 = time.perf_counter()
        S = np.asarray(E @ projection(E.shape[1], d, 0), dtype=np.float32)
        t_p = time.perf_counter() - t0
        Ds = squared_euclidean(S.astype(np.float64))
        rel = (Ds[iu][ok] - exact[ok]) / exact[ok]
        print(f"| {d} | {np.median(np.abs(rel)):.4f} | {np.quantile(np.abs(rel), 0.9):.4f} "
              f"| {rel.mean():+.4f} | {_recall(D, Ds):.3f} | {t_p:.2f} |")
        if args.f16:
            S16 = S.astype(np.float16).astype(np.float64)
            Dh = squared_euclidean(S16)
            rel16 = (Dh[iu][ok] - exact[ok]) / exact[ok]
            print(f"| {d} float16 | {np.median(np.abs(rel16)):.4f} "
                  f"| {np.quantile(np.abs(rel16), 0.9):.4f} | {rel16.mean():+.4f} "
                  f"| {_recall(D, Dh):.3f} | |")


# ------------------------------------------------------------------------- stages (subprocess)

def _child(stage: str, spec: dict) -> dict:
    """Run one stage in a fresh interpreter; returns its JSON result plus its peak RSS."""
    code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import scale; "
            f"print(json.dumps(scale._stage({stage!r}, json.loads({json.dumps(json.dumps(spec))}))))")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{out.stderr[-3000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_s"] = wall
    return res


def _rss_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM (reset at exec), not ru_maxrss (which
    Linux keeps across exec, so a child of a large parent would report the parent's peak)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synthetic(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Video-like sketches: shots of 50-500 frames, each a random walk from its own start."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), np.float32)
    i = 0
    while i < n:
        m = min(n - i, int(rng.integers(50, 500)))
        start = rng.normal(size=d) * 3.0
        steps = rng.normal(size=(m, d)) * 0.05
        out[i:i + m] = start + np.cumsum(steps, axis=0)
        i += m
    perm = rng.permutation(n)  # shuffled: the order is what we recover
    return out[perm]


#: Zooms of the long video's variants: the centre ``z`` of every frame scaled back up (a camera
#: zoom), applied after the 24 mirror / channel-order variants.
ZOOMS = (1.0, 0.85, 0.7, 0.55, 0.4)


def long_video_frames(long_edge: int):
    """Distinct real frames, as a generator: every real frame (bunny, then each dev clip,
    letterboxed: ``frame_pool.real_frames``; 887 at 256 px), then the same frames mirrored
    left-right, up-down and both, each of those with the colour channels permuted (GBR, BRG,
    RBG, BGR, GRB): 24 variants; then all 24 again zoomed in (:data:`ZOOMS`: the centre 85%,
    70%, 55%, 40% scaled back up, Lanczos): 120 variants, each one a copy of the whole real
    "video" in its order (up to 106,440 distinct frames at 256 px).
    Duplicates (frames equal after the transformation) are dropped."""
    from PIL import Image

    from frame_pool import real_frames
    from reseq.distances import frame_hashes

    base, _ = real_frames(long_edge)
    h, w = base.shape[1:3]
    seen: set[str] = set()
    for z in ZOOMS:
        if z == 1.0:
            zb = base
        else:
            ch, cw = round(h * z), round(w * z)
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            zb = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(
                im[y0:y0 + ch, x0:x0 + cw])).resize((w, h), Image.Resampling.LANCZOS))
                for im in base])
        for perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2)):
            for flip in (zb, zb[:, :, ::-1], zb[:, ::-1], zb[:, ::-1, ::-1]):
                v = np.ascontiguousarray(flip[..., perm])
                for im, hh in zip(v, frame_hashes(v)):
                    if hh not in seen:
                        seen.add(hh)
                        yield im


def long_video(n: int, long_edge: int) -> np.ndarray:
    """The first ``n`` frames of :func:`long_video_frames` as one array."""
    out = []
    for im in long_video_frames(long_edge):
        out.append(im)
        if len(out) == n:
            return np.stack(out)
    raise SystemExit(f"only {len(out)} distinct frames at {long_edge} px, asked for {n}")


def write_video(n: int, long_edge: int, path: str, fps: float = 24.0) -> None:
    """The first ``n`` frames of :func:`long_video_frames` as an H.264 MP4 (crf 18), streamed:
    the frames are never all in memory."""
    import av

    from reseq._util import progress

    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        count = 0
        for im in progress(long_video_frames(long_edge), "writing", total=n, unit="frame"):
            if count == 0:
                stream.height, stream.width = im.shape[:2]
            for packet in stream.encode(av.VideoFrame.from_ndarray(im, format="rgb24")):
                container.mux(packet)
            count += 1
            if count == n:
                break
        for packet in stream.encode():
            container.mux(packet)
    if count < n:
        raise SystemExit(f"only {count} distinct frames at {long_edge} px, asked for {n}")
    print(f"wrote {path}: {count} frames at {long_edge} px, {fps:g} fps")


def _stage(stage: str, spec: dict) -> dict:
    import os

    if stage == "write":
        return _write_child(spec)
    work = Path(spec["work"])
    t0 = time.perf_counter()
    res: dict = {}
    if stage == "frames":
        fr = long_video(spec["n"], spec["size"])
        np.save(work / "frames.npy", fr)
        res["frames"] = list(fr.shape)
    elif stage == "sketch":
        from reseq.sketches import sketch

        fr = np.load(work / "frames.npy", mmap_mode="r")
        S = sketch(np.asarray(fr), d=spec["d"], progress=False, device="cpu")
        np.save(work / "sketch.npy", S)
    elif stage == "synthetic":
        np.save(work / "sketch.npy", _synthetic(spec["n"], spec["d"]))
    elif stage == "knn":
        from reseq.graph.knn import knn_graph

        S = np.load(work / "sketch.npy")
        G = knn_graph(S, k=spec["k"])
        import scipy.sparse as sp

        sp.save_npz(work / "graph.npz", G.graph)
        nb_idx, nb_dist = G.neighbours(spec["k"])  # the lists the graph was built from
        np.save(work / "nb_idx.npy", nb_idx)
        np.save(work / "nb_dist.npy", nb_dist)
    elif stage in ("order", "loop", "mst", "outliers"):
        import scipy.sparse as sp

        import reseq.graph as g
        from reseq.graph.sparse import SparseDistances

        S = np.load(work / "sketch.npy")
        nb = None  # the neighbour lists, as knn_graph hands them to the path search in-process
        if os.path.exists(work / "nb_idx.npy"):
            nb = (np.load(work / "nb_idx.npy"), np.load(work / "nb_dist.npy"))
        SD = SparseDistances(S, sp.load_npz(work / "graph.npz"), nb)
        if stage == "order":
            p = g.order(SD)
            np.save(work / "order.npy", p.order)
            res["cost_sketch"] = p.cost
        elif stage == "loop":
            res["cost_sketch"] = g.loop(SD).cost
        elif stage == "mst":
            res["edges"] = len(g.minimum_spanning_tree(SD))
        else:
            res["outliers"] = len(g.outliers(SD).indices)
    elif stage == "dense":
        import reseq.graph as g
        from reseq.distances import distance_matrix

        fr = np.load(work / "frames.npy")
        D = distance_matrix(fr, progress=False)
        t1 = time.perf_counter()
        p = g.order(D)
        res["order_s"] = time.perf_counter() - t1
        res["cost_exact"] = p.cost
        np.save(work / "order_dense.npy", p.order)
        if os.path.exists(work / "order.npy"):
            res["sparse_cost_exact"] = float(g.path_cost(D, np.load(work / "order.npy")))
    res["s"] = time.perf_counter() - t0
    res["rss_mb"] = _rss_mb()
    return res


def stages(args) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="reseq-scale-") as tmp:
        base = {"work": tmp, "n": args.n, "size": args.size, "d": args.d, "k": args.k}
        names = (["synthetic"] if args.synthetic else ["frames", "sketch"]) + \
            ["knn", "order", "mst", "outliers"] + (["loop"] if args.loop else []) + \
            (["dense"] if args.dense else [])
        print(f"N = {args.n}, " + (f"synthetic video-like sketches d = {args.d}" if args.synthetic
              else f"real frames (long_video: bunny + dev clips, flips, channel orders) at {args.size} px, d = {args.d}")
              + f", k = {args.k}; each stage in a fresh process")
        print("| stage | time s | peak RSS MB | notes |")
        print("|---|---|---|---|")
        for name in names:
            r = _child(name, base)
            notes = {k: v for k, v in r.items() if k not in ("s", "rss_mb", "wall_s")}
            print(f"| {name} | {r['s']:.1f} | {r['rss_mb']:.0f} | "
                  f"{json.dumps(notes) if notes else ''} |", flush=True)


# ------------------------------------------------------------------------- kendall (dev clips)

def kendall(args) -> None:
    """The evaluation protocol (``reseq evaluate``: non-cyclic dev clips, every K-th frame,
    shuffled, ends given, Kendall tau distance), dense exact LPIPS against the sparse path."""
    from reseq.distances import distance_matrix
    from reseq.evaluate import protocol as ev
    from reseq.graph.knn import knn_graph
    from reseq.graph.sparse import sparse_order
    from reseq.sketches import sketch

    clips = ev.read_corpus(args.corpus)
    modes = ["sparse"] + ([f"window={args.window}"] if args.window else [])
    print(f"{len(clips)} non-cyclic clips of {args.corpus}, --size {args.size}, seed {args.seed};"
          f" dense = the evaluation's lpips-alex row; sparse = sketch(d) -> knn_graph(k=10) -> "
          f"order(SD, start, end)" + (f"; window={args.window}: sparse_order(..., "
                                     f"window={args.window}) (greedy, local search, "
                                     f"arrange_segments, windows) on clips longer than "
                                     f"{args.window}" if args.window else ""))
    table, diffs = [], []
    for every in args.every:
        loaded = []
        for clip in clips:
            array = ev._load_clip(clip, every, args.size)
            if len(array) >= 4:  # evaluate_corpus skips shorter clips
                loaded.append((clip, array))
        dense = {}
        for clip, array in loaded:
            (res,), _ = ev.evaluate_frames(clip, array, ["lpips-alex"], seed=args.seed)
            n = len(array)
            perm = ev._shuffle(clip.name, n, args.seed)  # as evaluate_frames shuffles
            x = np.ascontiguousarray(array[perm])
            inv = np.argsort(perm)
            start, end = int(inv[0]), int(inv[-1])
            D = distance_matrix(x, progress=False)  # the same matrix (from the matrix cache)
            path = ev._hamiltonian(D, start, end, args.seed)
            assert ev.score_path(D, perm, path)[0] == res.tau
            dense[clip.name] = (res, x, perm, start, end, D, path)
        for d in args.d:
            rows: dict[str, list] = {mode: [] for mode in modes}
            for clip, _ in loaded:
                res, x, perm, start, end, D, path = dense[clip.name]
                SD = knn_graph(sketch(x, d=d, seed=0, device=args.device, progress=False), 10)
                whole = None
                for mode in modes:
                    if mode == "sparse":  # what reseq.graph.order does with a SparseDistances
                        sp_path = whole = ev._hamiltonian(SD, start, end, args.seed)
                    else:
                        sp_path = np.asarray(sparse_order(SD, start, end, seed=args.seed,
                                                          window=args.window).order)
                    tau, cost, _ = ev.score_path(D, perm, sp_path)
                    same = bool(np.array_equal(sp_path, path))
                    windowed = mode != "sparse" and len(x) > args.window
                    rows[mode].append((res.tau, tau, same, windowed,
                                       bool(np.array_equal(sp_path, whole))))
                    if not same:
                        diffs.append((every, d, mode, clip.name, len(x), res.tau, tau,
                                      res.cost_found, cost, cost / res.cost_found - 1))
                print(".", end="", file=sys.stderr, flush=True)
            for mode in modes:
                td, ts, same, windowed, as_whole = (np.array(c) for c in zip(*rows[mode]))
                table.append((every, d, mode, len(td), td.mean(), ts.mean(),
                              ts.mean() - td.mean(), int((td == 0).sum()), int((ts == 0).sum()),
                              int(same.sum()), int(windowed.sum()), int(as_whole.sum())))
    print()
    print("| K | d | path | clips | mean tau dense | mean tau sparse | difference | perfect dense "
          "| perfect sparse | same order as dense | windowed (n > window) | same as sparse |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k, d, mode, n, td, ts, diff, pd, ps, same, win, whole in table:
        extra = "- | -" if mode == "sparse" else f"{win} | {whole}/{n}"
        print(f"| {k} | {d} | {mode} | {n} | {td:.4f} | {ts:.4f} | {diff:+.4f} | {pd} | {ps} "
              f"| {same}/{n} | {extra} |")
    print()
    print("Clips whose order differs (cost on the exact matrix; excess = sparse / dense - 1):")
    print()
    print("| K | d | path | clip | frames | tau dense | tau sparse | cost dense | cost sparse "
          "| excess |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k, d, mode, name, n, td, ts, cd, cs, ex in diffs:
        print(f"| {k} | {d} | {mode} | {name} | {n} | {td:.4f} | {ts:.4f} | {cd:.5g} | {cs:.5g} "
              f"| {ex:+.4%} |")
def dask_stage(args) -> None:
    """The sketch stage from an MP4 of ``long_video`` frames (written by reseq's writer): the
    client decodes and sketches (``sketch(load_frames(...))``); ``sketch_source`` in-process
    (decoding as tasks over shards); ``sketch_source`` on a ``distributed.LocalCluster`` of
    ``--workers`` processes of one thread each (cold: the workers import torch and load the
    network; then warm). No cache."""
    import os
    import tempfile

    from distributed import LocalCluster

    from reseq.frames import load_frames
    from reseq.render import write_sequence
    from reseq.sketches import sketch, sketch_source

    os.environ["RESEQ_NO_CACHE"] = "1"
    with tempfile.TemporaryDirectory(prefix="reseq-dask-") as tmp:
        fr = long_video(args.n, args.size)
        video = Path(tmp) / "long.mp4"
        write_sequence(video, fr, [str(i) for i in range(len(fr))], [None] * len(fr), fps=24)
        del fr
        kw = dict(size=args.size, d=args.d, cache=False, progress=False, device="cpu")
        import torch

        print(f"N = {args.n} long_video frames in an MP4 ({video.stat().st_size / 1e6:.1f} MB) "
              f"at {args.size} px, d = {args.d}; torch threads here: {torch.get_num_threads()}")
        print("| run | time s | frames/s | notes |")
        print("|---|---|---|---|")
        t0 = time.perf_counter()
        frames = load_frames(video, size=args.size, progress=False)
        ref = sketch(frames, d=args.d, cache=False, progress=False, device="cpu")
        t = time.perf_counter() - t0
        print(f"| load_frames + sketch (decoded here) | {t:.1f} | {args.n / t:.0f} | |",
              flush=True)
        t0 = time.perf_counter()
        here = sketch_source(video, **kw)
        t = time.perf_counter() - t0
        print(f"| sketch_source, in-process tasks | {t:.1f} | {args.n / t:.0f} | "
              f"equal to the above: {np.array_equal(here.array, ref)} |", flush=True)
        t0 = time.perf_counter()
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None,
                          processes=True) as lc:
            t_up = time.perf_counter() - t0
            for what in ("cold", "warm"):
                t1 = time.perf_counter()
                got = sketch_source(video, scheduler=lc.scheduler_address, **kw)
                t = time.perf_counter() - t1
                print(f"| sketch_source, LocalCluster {args.workers} x 1 thread, {what} "
                      f"| {t:.1f} | {args.n / t:.0f} | cluster start {t_up:.1f} s; bit-identical "
                      f"to in-process: {np.array_equal(got.array, here.array)} |", flush=True)
# ------------------------------------------------------------------------- knn (subprocess)

def _knn_run(spec: dict) -> dict:
    """One neighbour search in a fresh interpreter: times, recall against the saved truth."""
    import reseq.graph.knn as kn

    work, k = Path(spec["work"]), spec["k"]
    S = np.load(work / "S.npy")
    n = len(S)
    res: dict = {}
    if spec.get("nprobe"):
        kn.NPROBE = spec["nprobe"]
    t0 = time.perf_counter()
    if spec["method"] == "exact":
        idx, _ = kn.knn(S, k, method="exact")
        res["build_s"], res["search_s"] = 0.0, time.perf_counter() - t0
        np.save(work / "truth.npy", idx)
    elif spec["method"] == "ivf":
        ix = kn._Index(S)
        res["build_s"] = time.perf_counter() - t0
        res["params"] = f"nlist={ix.nlist} nprobe={ix.nprobe}"
        t1 = time.perf_counter()
        idx = ix.search(k)
        kn._exact(S, np.repeat(np.arange(n), k), idx.ravel())  # as knn() does
        res["search_s"] = time.perf_counter() - t1
    else:  # the whole stage: knn_graph (search, symmetrised, components joined)
        SD = kn.knn_graph(S, k)
        res["build_s"], res["search_s"] = 0.0, time.perf_counter() - t0
        res["params"] = f"knn_graph, {SD.graph.nnz // 2} edges"
        idx = SD._nb[0]  # the lists the graph was built from
    if spec["method"] != "exact":
        truth = np.load(work / "truth.npy")
        rows = np.load(work / "rows.npy") if (work / "rows.npy").exists() else np.arange(n)
        res["recall"] = float(np.mean([len(set(idx[r]) & set(t)) / k
                                       for r, t in zip(rows, truth)]))
    res["rss_mb"] = _rss_mb()
    return res


def _sampled_truth(S: np.ndarray, rows: np.ndarray, k: int, chunk: int = 65536) -> np.ndarray:
    """The exact ``k`` nearest others of ``S[rows]`` by brute force over column chunks (memory:
    len(rows) x chunk), ranked in float64 from the kept float32 candidates."""
    import torch

    X = torch.from_numpy(S)
    sq = (X * X).sum(dim=1)
    Q = X[torch.from_numpy(rows)]
    cand = []
    for a in range(0, len(S), chunk):
        d2 = sq[rows, None] + sq[None, a:a + chunk] - 2.0 * (Q @ X[a:a + chunk].T)
        d2[torch.from_numpy(rows)[:, None] == torch.arange(a, a + d2.shape[1])[None, :]] = \
            float("inf")
        cand.append(torch.topk(d2, min(4 * k, d2.shape[1]), dim=1, largest=False).indices + a)
    cand = torch.cat(cand, 1).numpy()
    diff = S[cand].astype(np.float64) - S[rows][:, None, :]
    d = np.einsum("ijk,ijk->ij", diff, diff)
    o = np.lexsort((cand, d), axis=1)[:, :k]
    return np.take_along_axis(cand, o, axis=1)


def knn_bench(args) -> None:
    """``knn``: exact vs IVF on real-frame sketches (recall over all rows), IVF and the whole
    kNN-graph stage on synthetic video-like sketches (recall over a sample)."""
    import tempfile

    print(f"k = {args.k}; each search in a fresh process (peak RSS its own); "
          f"OMP_NUM_THREADS={__import__('os').environ.get('OMP_NUM_THREADS', 'unset')}")
    print("| data | method | N | d | params | build s | search s | recall@10 | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")

    def run(spec):
        code = (f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import scale; "
                f"print(json.dumps(scale._knn_run(json.loads({json.dumps(json.dumps(spec))}))))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=False)
        if out.returncode != 0:
            raise SystemExit(f"knn {spec['method']} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def row(data, method, n, d, r, note=""):
        rec = f"{r['recall']:.4f}{note}" if "recall" in r else "(truth)"
        print(f"| {data} | {method} | {n} | {d} | {r.get('params', '')} | {r['build_s']:.1f} "
              f"| {r['search_s']:.1f} | {rec} | {r['rss_mb']:.0f} |", flush=True)

    with tempfile.TemporaryDirectory(prefix="reseq-knn-") as tmp:
        base = {"work": tmp, "k": args.k}
        if args.real:
            from reseq.sketches import sketch

            fr = long_video(args.real, args.size)
            for d in args.d:
                np.save(Path(tmp) / "S.npy", sketch(fr, d=d, progress=False, device="cpu"))
                data = f"real frames {args.size} px"
                row(data, "exact", args.real, d, run({**base, "method": "exact"}))
                for p in args.nprobe:
                    row(data, "ivf", args.real, d, run({**base, "method": "ivf", "nprobe": p}))
            del fr
        if args.synthetic:
            n, d = args.synthetic, args.synthetic_d
            S = _synthetic(n, d)
            np.save(Path(tmp) / "S.npy", S)
            rows = np.sort(np.random.default_rng(1).choice(n, args.sample, replace=False))
            np.save(Path(tmp) / "rows.npy", rows)
            np.save(Path(tmp) / "truth.npy", _sampled_truth(S, rows, args.k))
            del S
            note = f" ({args.sample} sampled)"
            for p in args.nprobe:
                row("synthetic", "ivf", n, d, run({**base, "method": "ivf", "nprobe": p}), note)
            if not args.no_graph:
                row("synthetic", "graph", n, d, run({**base, "method": "graph"}), note)


# ------------------------------------------------------------------------- order (step by step)

def order_steps(args) -> None:
    """The sparse order's construction steps one by one, with the time and the sketch cost of
    the path after each: real frames (``long_video(n, size)``) or synthetic sketches."""
    from reseq.graph import sparse as sps
    from reseq.graph.knn import knn_graph

    if args.synthetic:
        S = _synthetic(args.n, args.d)
        what = f"{args.n} synthetic video-like sketches, d = {args.d}"
    else:
        from reseq.sketches import sketch

        S = sketch(long_video(args.n, args.size), d=args.d, progress=False, device="cpu")
        what = f"{args.n} real frames (long_video) at {args.size} px, d = {args.d}"
    t = time.perf_counter()
    SD = knn_graph(S, k=args.k)
    print(f"{what}; knn_graph (k = {args.k}) {time.perf_counter() - t:.1f} s")
    print("| step | s | path cost (sketches) | peak RSS MB |")
    print("|---|---|---|---|")
    steps = [("greedy matching", lambda p: sps.greedy_path(SD)),
             ("2-opt / Or-opt on neighbour lists", lambda p: sps.local_search(SD, p, False, False)),
             ("pieces re-arranged", lambda p: sps.arrange_segments(SD, p, False, False, 0)),
             ("2-opt / Or-opt again", lambda p: sps.local_search(SD, p, False, False))]
    for passes in args.passes:
        steps.append((f"windows, {passes} pass(es) from the step above",
                      lambda p, k=passes: sps._refine(SD, p, False, True, True, 0, 1.0,
                                                      sps.WINDOW, k, False)))
    base = None
    for name, fn in steps:
        t = time.perf_counter()
        q = fn(base)
        print(f"| {name} | {time.perf_counter() - t:.1f} | {SD.path_cost(q):.4f} "
              f"| {_rss_mb():.0f} |", flush=True)
        if not name.startswith("windows"):
            base = q


def write_stage(args) -> None:
    """Writing N frames kept on disk in a path-like order (blocks of 256 frames shuffled, every
    other block reversed) to an MP4: through a copy in that order (``take_frames``, what ``reseq
    order`` did before) against reading them in place (``frames_in_order``, what it does now).
    Each in a fresh process: wall time, peak RSS (VmHWM) and the extra temporary file."""
    for how in ("copy", "view"):
        r = _child("write", {"n": args.n, "size": args.size, "how": how})
        print(f"| {how} | {args.n} | {r['seconds']:.1f} | {r['rss_mb']:.0f} | "
              f"{r['extra_mb']:.0f} |", flush=True)


def _write_child(spec: dict) -> dict:
    import os
    import tempfile

    from reseq._util import DiskArray, frames_in_order, take_frames
    from reseq.render import write_sequence

    store = None
    for im in long_video_frames(spec["size"]):
        if store is None:
            store = DiskArray(im.shape, spec["n"])
        store.append(im[None])
        if store.count == spec["n"]:
            break
    frames = store.finish()
    n = len(frames)
    blocks = [np.arange(a, min(a + 256, n)) for a in range(0, n, 256)]
    rng = np.random.default_rng(0)
    order = np.concatenate([b[::-1] if i % 2 else b for i, b in
                            enumerate(blocks[j] for j in rng.permutation(len(blocks)))])
    t0 = time.perf_counter()
    images = take_frames(frames, order) if spec["how"] == "copy" else frames_in_order(frames, order)
    extra = images.nbytes / 1e6 if isinstance(images, np.ndarray) else 0.0
    with tempfile.TemporaryDirectory() as tmp:
        write_sequence(os.path.join(tmp, "out.mp4"), images, [str(i) for i in order],
                       [None] * n, fps=24)
    return {"seconds": time.perf_counter() - t0, "rss_mb": _rss_mb(), "extra_mb": extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--frames", type=int, default=600)
    a.add_argument("--size", type=int, default=128)
    a.add_argument("--net", default="alex")
    a.add_argument("--d", type=int, nargs="+", default=[256, 512, 1024, 2048])
    a.add_argument("--f16", action="store_true", help="also float16-stored sketches")
    for name in ("stages", "synthetic"):
        s = sub.add_parser(name)
        s.add_argument("--n", type=int, default=5000)
        s.add_argument("--size", type=int, default=64)
        s.add_argument("--d", type=int, default=1024)
        s.add_argument("--k", type=int, default=10)
        s.add_argument("--loop", action="store_true")
        s.add_argument("--dense", action="store_true", help="also the dense pipeline (quality)")
    v = sub.add_parser("video", help="write the long real-frame video as an MP4")
    v.add_argument("--n", type=int, default=100_000)
    v.add_argument("--size", type=int, default=256)
    v.add_argument("-o", "--output", required=True)
    kd = sub.add_parser("kendall", help="dev-clip evaluation: dense vs sparse Kendall tau")
    kd.add_argument("--corpus", default=str(HERE.parent.parent / "shared" / "dev-clips"))
    kd.add_argument("--size", type=int, default=256)
    kd.add_argument("--every", type=int, nargs="+", default=[1, 2, 3])
    kd.add_argument("--d", type=int, nargs="+", default=[256, 1024])
    kd.add_argument("--seed", type=int, default=0)
    kd.add_argument("--window", type=int, default=8,
                    help="also sparse_order with this window (0: not)")
    kd.add_argument("--device", default="cpu")
    k = sub.add_parser("dask")
    k.add_argument("--n", type=int, default=5000)
    k.add_argument("--size", type=int, default=64)
    k.add_argument("--d", type=int, default=1024)
    k.add_argument("--workers", type=int, default=2)
    kb = sub.add_parser("knn", help="exact vs approximate nearest neighbours")
    kb.add_argument("--real", type=int, default=20000, help="real frames (long_video); 0: none")
    kb.add_argument("--size", type=int, default=64)
    kb.add_argument("--d", type=int, nargs="+", default=[256, 1024])
    kb.add_argument("--synthetic", type=int, default=10 ** 6, help="synthetic N; 0: none")
    kb.add_argument("--synthetic-d", type=int, default=256)
    kb.add_argument("--sample", type=int, default=1000, help="synthetic recall: queries")
    kb.add_argument("--nprobe", type=int, nargs="*", default=[8], help="ivf rows (none: only the graph)")
    kb.add_argument("--no-graph", action="store_true", help="synthetic: no knn_graph row")
    kb.add_argument("--k", type=int, default=10)
    o = sub.add_parser("order", help="the sparse order's steps one by one")
    o.add_argument("--n", type=int, default=20000)
    o.add_argument("--size", type=int, default=64)
    o.add_argument("--d", type=int, default=1024)
    o.add_argument("--k", type=int, default=10)
    o.add_argument("--synthetic", action="store_true")
    o.add_argument("--passes", type=int, nargs="*", default=[1, 2])
    w = sub.add_parser("write", help="frames on disk to an MP4 in path order: copy vs in place")
    w.add_argument("--n", type=int, default=20000)
    w.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    if args.cmd == "write":
        print("| how | frames | seconds | peak RSS MB | extra temporary MB |")
        print("|---|---|---|---|---|")
        write_stage(args)
    elif args.cmd == "order":
        order_steps(args)
    elif args.cmd == "video":
        write_video(args.n, args.size, args.output)
    elif args.cmd == "accuracy":
        accuracy(args)
    elif args.cmd == "kendall":
        kendall(args)
    elif args.cmd == "dask":
        dask_stage(args)
    elif args.cmd == "knn":
        knn_bench(args)
    else:
        args.synthetic = args.cmd == "synthetic"
        stages(args)


if __name__ == "__main__":
    main()
