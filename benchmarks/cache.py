"""Benchmark: what verifying a cache entry costs, against reading it unverified.

Entries of the real sizes: a 1000 x 1000 float64 distance matrix, and per-frame feature files
of AlexNet and VGG16 at the default working size (256 x 144). For each it prints the time of
the unverified read reseq did before (``np.load`` / ``np.fromfile``), of the verified read
(:func:`reseq.cache.read_entry`: header, sha256 of every chunk, payload), of a streamed column
block (:func:`reseq.cache.read_range`, the chunks it touches), and of the atomic, fsynced write.
Files sit in the page cache (just written), so the difference is the CPU cost of the check.
Median of ``--repeats``; the feature rows are summed over ``--frames`` files.

    .venv/bin/python benchmarks/cache.py
    .venv/bin/python benchmarks/cache.py --frames 50 --repeats 7
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from reseq import cache
from reseq.distances import CHUNK_COLS

BLOCK = 4 * CHUNK_COLS  # one streamed block: 4 chunks of columns from every file


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20, help="feature files per network")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from reseq.features import feature_dim

    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="reseq-bench-cache-") as tmp:
        tmp = Path(tmp)
        # ---- a 1000 x 1000 matrix
        D = rng.random((1000, 1000))
        plain, entry = tmp / "D.npy", tmp / ("0" * 64 + ".dist")
        np.save(plain, D)
        buf = io.BytesIO()
        np.save(buf, D)
        write = _median(lambda: cache.write_entry(entry, buf.getbuffer()), args.repeats)
        old = _median(lambda: np.load(plain), args.repeats)
        new = _median(lambda: np.load(io.BytesIO(cache.read_entry(entry))), args.repeats)
        rows.append(("matrix 1000x1000 f64", 1, D.nbytes, old, new, float("nan"), write))
        # ---- per-frame features
        for net in ("alex", "vgg"):
            dim = feature_dim(net, 144, 256)
            n = args.frames
            feats = [rng.random(dim, dtype=np.float32) for _ in range(n)]
            plains = [tmp / f"{net}{i}.f32" for i in range(n)]
            entries = [tmp / f"{i:064x}.feat" for i in range(n)]
            for row, p in zip(feats, plains):
                row.tofile(p)

            def write_all(entries=entries, feats=feats):
                for row, e in zip(feats, entries):
                    cache.write_entry(e, row, CHUNK_COLS * 4)

            write = _median(write_all, args.repeats)
            old = _median(lambda plains=plains: [np.fromfile(p, np.float32) for p in plains],
                          args.repeats)
            new = _median(lambda entries=entries, dim=dim: [
                np.frombuffer(cache.read_entry(e, dim * 4), np.float32) for e in entries],
                args.repeats)
            stream = _median(lambda entries=entries, dim=dim: [
                cache.read_range(e, 0, BLOCK * 4, dim * 4) for e in entries], args.repeats)
            rows.append((f"features {net} 256x144", n, dim * 4, old, new, stream, write))

    block = np.random.default_rng(1).bytes(64 << 20)
    sha = _median(lambda: hashlib.sha256(block).digest(), args.repeats)
    print(f"cache entry reads and writes ({os.cpu_count()} CPUs, page cache warm, median of "
          f"{args.repeats}); sha256 alone: {sha * 1e3 / 64:.2f} ms/MB, load average "
          f"{os.getloadavg()[0]:.1f}")
    head = ("entry", "files", "MB/file", "unverified ms", "verified ms", "overhead ms/MB",
            "block of 4 chunks ms", "atomic write ms")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for name, n, size, old, new, stream, write in rows:
        mb = n * size / 2**20
        print(f"{name} | {n} | {size / 2**20:.2f} | {old * 1e3:.1f} | {new * 1e3:.1f} | "
              f"{(new - old) * 1e3 / mb:.2f} | "
              f"{'-' if stream != stream else f'{stream * 1e3:.2f}'} | {write * 1e3:.1f}")


if __name__ == "__main__":
    main()
