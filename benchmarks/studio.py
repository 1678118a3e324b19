"""reseq studio at 200, 1,000 and 5,000 real frames: how fast the page comes up and answers.

Frames from ``frame_pool.py`` (Big Buck Bunny and the dev clips, mirrored and colour-swapped
copies past the real ones) at a 128-px long edge; the distance matrix is computed once first (not timed), so every
timed run reads it from the cache, as a user's second session does. The server runs in this
process (``StudioServer``, uvicorn in a thread), the page in Debian's chromium-headless-shell
driven by Playwright (software rendering, 2 cores).

Columns:
- ``ready s``: ``Session.compute`` with the matrix cache warm (matrix read, tree, map layout,
  outliers, thumbnail atlases), then the server started: the time until the URL is printed;
  ``layout s`` is the part of it spent in :func:`reseq.layouts.layout` (style ``"mst"``);
- ``paint s``: ``page.goto`` until the map has drawn all N points (first paint);
- ``interactive s``: ``page.goto`` until the page is ready for input (state restored, sequence
  shown); ``start->interactive s`` = ready + interactive;
- ``click ms``: a click on the map (adding the second, third, ... key) until the in-betweens
  filmstrip shows the new path, median of 5, measured from Python (Playwright's actionability
  checks and polling included: an upper bound); ``in-page ms``: the same measured by the page,
  from the click handler to the filmstrip, step strip, player and map path updated;
- ``export s``: the export button until the MP4, its index and the project file are written;
- ``RSS MB``: resident memory of this process (server, frames, matrix, caches) at the end.

Run: ``.venv/bin/python benchmarks/studio.py [--sizes 200,1000,5000]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _clickable(points: list[dict], count: int, box: dict) -> list[int]:
    xy = np.array([[p["x"] * box["width"], p["y"] * box["height"]] for p in points])
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xy).query(xy, k=2)
    order = np.argsort(-d[:, 1])  # the most isolated points: a click hits exactly them
    return [int(i) for i in order[:count]]


def pool(n: int, long_edge: int) -> np.ndarray:
    """``n`` distinct real frames: ``frame_pool``'s four mirrorings of the real frames, then the
    same with the colour channels reversed (BGR) when more are needed."""
    from frame_pool import real_frames

    base, _ = real_frames(long_edge)
    variants = [base, base[:, :, ::-1], base[:, ::-1], base[:, ::-1, ::-1]]
    variants += [v[..., ::-1] for v in variants]
    frames = np.concatenate(variants)
    if n > len(frames):
        raise SystemExit(f"only {len(frames)} distinct frames available, asked for {n}")
    return np.ascontiguousarray(frames[:n])


def run(n: int, browser, long_edge: int, out: Path) -> dict:
    from reseq.distances import distance_matrix
    from reseq.frames import Frames
    from reseq.studio import Session, StudioServer

    frames = Frames(pool(n, long_edge), [f"frame {i}" for i in range(n)], "frame_pool")
    distance_matrix(frames, progress=True)  # warm the cache (not timed)
    t0 = time.perf_counter()
    session = Session(frames, settings={"source": f"frame_pool({n})", "metric": "lpips",
                                        "net": "alex", "size": long_edge, "every": 1},
                      out_dir=out / str(n))
    session.compute(progress=False)
    server = StudioServer(session).start()
    ready = time.perf_counter() - t0
    row = {"n": n, "ready": ready, "layout": session.timings.get("layout", float("nan")),
           "timings": dict(session.timings)}
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        t1 = time.perf_counter()
        page.goto(server.url)
        page.wait_for_selector(f'[data-testid=mst-view][data-drawn-points="{n}"]',
                               timeout=120_000)
        row["paint"] = time.perf_counter() - t1
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        row["interactive"] = time.perf_counter() - t1
        points = page.evaluate("fetch('/api/layout').then(r => r.json())")["points"]
        view = page.locator("[data-testid=mst-view]")
        box = view.bounding_box()
        keys = _clickable(points, 6, box)
        times, inpage = [], []
        for k, i in enumerate(keys):
            before = page.get_attribute("[data-testid=inbetweens]", "data-frames")
            t2 = time.perf_counter()
            view.click(position={"x": points[i]["x"] * box["width"],
                                 "y": points[i]["y"] * box["height"]})
            page.wait_for_function(
                "b => { const e = document.querySelector('[data-testid=inbetweens]');"
                " return e.dataset.frames !== b; }", arg=before, timeout=60_000)
            if k > 0:
                times.append(time.perf_counter() - t2)
                inpage.append(float(page.get_attribute("[data-testid=inbetweens]", "data-ms")))
        row["click_ms"] = 1000 * statistics.median(times)
        row["page_ms"] = statistics.median(inpage)
        row["path_len"] = len(page.get_attribute("[data-testid=inbetweens]",
                                                 "data-frames").split(","))
        t3 = time.perf_counter()
        page.click("[data-testid=export]")
        page.wait_for_function("document.querySelector('[data-testid=export-result]')"
                               ".dataset.files.length > 0", timeout=120_000)
        row["export"] = time.perf_counter() - t3
        page.close()
    finally:
        server.stop()
    row["rss"] = _rss_mb()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200,1000,5000")
    ap.add_argument("--long-edge", type=int, default=128)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium-headless-shell")
    if exe is None:
        sys.exit("chromium-headless-shell is not installed (bash scripts/setup.sh --dev)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=exe, args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"])
        for n in (int(s) for s in args.sizes.split(",")):
            row = run(n, browser, args.long_edge, Path(tmp))
            rows.append(row)
            print(f"  N = {n}: stages {', '.join(f'{k} {v:.2f} s' for k, v in row['timings'].items())}",
                  flush=True)
        browser.close()
    print(f"\nreseq studio, frames at {args.long_edge} px, warm matrix cache, 1400x900 page, "
          "chromium-headless-shell (software rendering)")
    head = (f"{'N':>6} {'ready s':>8} {'layout s':>9} {'paint s':>8} {'interactive s':>14} "
            f"{'start->interactive s':>21} {'click ms':>9} {'in-page ms':>11} {'path':>5} {'export s':>9} "
            f"{'RSS MB':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['n']:>6} {r['ready']:>8.2f} {r['layout']:>9.2f} {r['paint']:>8.2f} "
              f"{r['interactive']:>14.2f} {r['ready'] + r['interactive']:>21.2f} "
              f"{r['click_ms']:>9.0f} {r['page_ms']:>11.0f} {r['path_len']:>5} {r['export']:>9.2f} {r['rss']:>7.0f}")


if __name__ == "__main__":
    main()
