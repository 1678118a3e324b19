"""Benchmark: ``reseq order`` on a 1000-frame video, from video file to MP4, cold and warm.

Builds (once, in the cache) an H.264 video of 1000 distinct real frames at 640x360 (Big Buck
Bunny and the dev clips, see ``frame_pool.py``), then times the CLI as a user runs it at the
default working size (long edge 256):

- cold: an empty feature/matrix cache (a fresh ``RESEQ_CACHE_DIR`` holding only the assets);
- warm: the same command again, caches filled by the cold run.

    .venv/bin/python benchmarks/end_to_end.py [--frames 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def make_video(path: Path, n: int) -> None:
    import av

    from frame_pool import frame_pool

    frames = frame_pool(n, long_edge=640)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    args = ap.parse_args()
    from reseq._util import cache_dir

    video = cache_dir("bench-e2e") / f"pool-{args.frames}.mp4"
    if not video.exists():
        make_video(video, args.frames)
    reseq = Path(sys.executable).parent / "reseq"
    work = Path(tempfile.mkdtemp(prefix="reseq-e2e-"))
    try:
        shutil.copytree(cache_dir("assets"), work / "cache" / "assets")
        env = {**os.environ, "RESEQ_CACHE_DIR": str(work / "cache")}
        rows = []
        for run in ("cold", "warm"):
            cmd = [str(reseq), "order", str(video), "-o", str(work / "out.mp4"), "--force"]
            t = time.perf_counter()
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            if res.returncode != 0:
                sys.exit(f"{run} run failed: {res.stderr.strip()}")
            rows.append((run, wall, res.stdout))
        print(f"video: {video.name}, {args.frames} frames 640x360 H.264; command: reseq order VIDEO -o out.mp4")
        print("| run | wall s | target s |")
        print("|---|---|---|")
        for (run, wall, _), target in zip(rows, (60, 10)):
            print(f"| {run} | {wall:.1f} | {target} |")
        print("\nwarm run's own summary:\n" + rows[1][2])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
