"""reseq studio's HTTP API and its security rules (Starlette TestClient, real frames), and the
CLI contract (a subprocess: one URL line on stdout, exit 0 on SIGTERM/SIGINT)."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLIP = "cyc_kivy_cvjoint"  # 22 frames of a rendered loop
HOST = "testserver"


@pytest.fixture(scope="module")
def session(clip_frames, tmp_path_factory):
    from reseq.distances import distance_matrix
    from reseq.studio import Session

    frames = clip_frames(CLIP, size=64)
    D = distance_matrix(frames, progress=False)
    s = Session(frames, D, settings={"source": CLIP, "metric": "lpips", "net": "alex",
                                     "size": 64, "every": 1},
                out_dir=tmp_path_factory.mktemp("studio-out"))
    s.compute(progress=False)
    return s


@pytest.fixture(scope="module")
def app(session):
    from reseq.studio import create_app

    return create_app(session, "the-token", [HOST])


@pytest.fixture()
def anon(app):
    from starlette.testclient import TestClient

    return TestClient(app, base_url=f"http://{HOST}", follow_redirects=False)


@pytest.fixture()
def client(app):
    from starlette.testclient import TestClient

    c = TestClient(app, base_url=f"http://{HOST}", follow_redirects=False)
    r = c.get("/?token=the-token")
    assert r.status_code == 303
    return c


def _one_line_error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and body["error"]
    return body["error"]


# ---- security -------------------------------------------------------------------------------


def test_token_is_exchanged_for_an_httponly_strict_cookie(anon):
    r = anon.get("/?token=the-token")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "the-token" not in cookie  # the cookie is a separate secret
    page = anon.get("/")
    assert page.status_code == 200 and 'data-testid="mst-view"' in page.text
    assert anon.get("/api/frames").status_code == 200


@pytest.mark.parametrize("path", ["/", "/api/frames", "/api/layout", "/api/frame/0.png",
                                  "/api/atlas/0.jpg", "/static/main.js", "/api/status",
                                  "/api/nothing"])
def test_every_request_without_the_cookie_is_forbidden(anon, path):
    _one_line_error(anon.get(path), 403)
    anon.cookies.set("reseq_studio", "guess")
    _one_line_error(anon.get(path), 403)


def test_wrong_token_and_posts_without_cookie_are_forbidden(anon):
    _one_line_error(anon.get("/?token=not-it"), 403)
    _one_line_error(anon.post("/api/inbetweens", json={"keys": [0, 1]}), 403)
    _one_line_error(anon.post("/api/export", json={"state": {"keys": [0, 5]}}), 403)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1", "localhost:1"])
def test_foreign_host_header_is_forbidden_even_with_the_cookie(client, host):
    # a DNS-rebinding page reaches this server under its own host name
    _one_line_error(client.get("/api/frames", headers={"host": host}), 403)
    _one_line_error(client.get("/?token=the-token", headers={"host": host}), 403)


def test_cross_origin_requests_are_forbidden(client):
    r = client.post("/api/inbetweens", json={"keys": [0, 3]},
                    headers={"origin": "http://evil.example"})
    _one_line_error(r, 403)
    ok = client.post("/api/inbetweens", json={"keys": [0, 3]},
                     headers={"origin": f"http://{HOST}"})
    assert ok.status_code == 200


def test_server_host_list():
    from reseq.studio import allowed_hosts

    assert allowed_hosts("127.0.0.1", 8123) == ["127.0.0.1:8123", "localhost:8123"]
    assert allowed_hosts("::1", 9) == ["127.0.0.1:9", "[::1]:9", "localhost:9"]


@pytest.mark.parametrize("path", ["/static/../session.py", "/static/%2e%2e%2fsession.py",
                                  "/static/app.py", "/api/frame/..%2F..%2Fetc%2Fpasswd.png",
                                  "/api/frame/-1.png", "/api/frame/22.png", "/api/frame/abc.png",
                                  "/api/atlas/1.jpg", "/api/distances/99"])
def test_no_client_path_reaches_the_file_system(client, path):
    r = client.get(path)
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "malformed JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"keys": [0, 5, 0]}).encode(), "twice"),
    (json.dumps({"keys": [0, 99]}).encode(), "no frame 99"),
    (json.dumps({"keys": [0, "5"]}).encode(), "list of frame indices"),
    (json.dumps({"keys": [0, 5], "excluded": [5]}).encode(), "excluded"),
    (json.dumps({"keys": [0, True]}).encode(), "list of frame indices"),
])
def test_bad_requests_get_a_one_line_4xx_and_the_server_keeps_serving(client, body, fragment):
    r = client.post("/api/inbetweens", content=body,
                    headers={"content-type": "application/json"})
    assert fragment in _one_line_error(r, 400)
    assert client.get("/api/frames").status_code == 200


def test_unknown_routes_and_methods(client):
    _one_line_error(client.get("/api/nothing"), 404)
    _one_line_error(client.get("/api/inbetweens"), 405)


# ---- the contract -----------------------------------------------------------------------


def test_frames_and_layout(client, session):
    from reseq.layouts import layout

    frames = client.get("/api/frames").json()["frames"]
    assert frames == [{"index": i, "label": lab} for i, lab in enumerate(session.frames.labels)]
    pts = client.get("/api/layout").json()["points"]
    assert [p["index"] for p in pts] == list(range(session.n))
    xy = np.array([[p["x"], p["y"]] for p in pts])
    assert xy.min() >= 0.04 and xy.max() <= 0.96  # padded inside the box
    ref = layout(session.D, "mst").positions  # the same map, padded
    np.testing.assert_allclose(xy, 0.05 + 0.9 * ref, atol=1e-9)


def test_inbetweens_are_reseq_inbetweens(client, session):
    from reseq.graph import inbetweens

    keys = [0, 11, 5]
    res = client.post("/api/inbetweens", json={"keys": keys}).json()
    path = inbetweens(session.D, keys).path.tolist()
    assert res["frames"] == path
    np.testing.assert_allclose(res["steps"], session.D[path[:-1], path[1:]])
    closed = client.post("/api/inbetweens", json={"keys": keys, "closed": True}).json()
    full = inbetweens(session.D, [*keys, keys[0]]).path.tolist()
    assert closed["frames"] == full[:-1] and len(closed["steps"]) == len(full) - 1
    one = client.post("/api/inbetweens", json={"keys": [4]}).json()
    assert one["frames"] == [4] and one["steps"] == []


def test_exclusion_recomputes_tree_and_paths(client, session):
    from reseq.graph import inbetweens

    keys = [0, 11]
    before = client.post("/api/inbetweens", json={"keys": keys}).json()["frames"]
    drop = before[len(before) // 2]
    after = client.post("/api/inbetweens", json={"keys": keys, "excluded": [drop]}).json()
    keep = np.array([i for i in range(session.n) if i != drop])
    sub = session.D[np.ix_(keep, keep)]
    local = [int(np.flatnonzero(keep == k)[0]) for k in keys]
    assert after["frames"] == keep[inbetweens(sub, local).path].tolist()
    assert drop not in after["frames"]
    edges = client.post("/api/tree", json={"excluded": [drop]}).json()["edges"]
    assert len(edges) == session.n - 2 and all(drop not in e for e in edges)


def test_alternatives_minimise_both_neighbouring_steps(client, session):
    D = session.D
    frames = client.post("/api/inbetweens", json={"keys": [0, 11]}).json()["frames"]
    p = len(frames) // 2
    alts = client.post("/api/alternatives", json={"frames": frames, "position": p, "k": 3}).json()
    cost = D[frames[p - 1]] + D[frames[p + 1]]
    cost[frames] = np.inf  # nothing already in the sequence
    best = np.argsort(cost, kind="stable")[:3]
    assert [a["index"] for a in alts["alternatives"]] == best.tolist()
    np.testing.assert_allclose([a["cost"] for a in alts["alternatives"]], cost[best])
    swapped = client.post("/api/sequence", json={"state": {
        "keys": [0, 11], "swaps": {str(p): int(best[0])}}}).json()
    assert swapped["frames"][p] == best[0] and swapped["frames"][:p] == frames[:p]


def test_order_and_loop_builder(client, session):
    from reseq.graph import loop

    order = client.post("/api/order", json={}).json()["frames"]
    assert sorted(order) == list(range(session.n))
    res = client.post("/api/loop", json={"frame": 7, "length": 10}).json()
    f = res["frames"]
    assert f[0] == 7 and len(f) == 10 and len(set(f)) == 10 and res["closed"]
    assert res["seam"] == pytest.approx(session.D[f[-1], f[0]])
    cyc = loop(session.D).order.tolist()  # frames come in the cycle's order, from frame 7
    rel = [(cyc.index(i) - cyc.index(7)) % len(cyc) for i in f]
    assert rel == sorted(rel)
    _one_line_error(client.post("/api/loop", json={"frame": 7, "length": 1}), 400)


def test_subsequences_panel_endpoint(client, session):
    from reseq.sequences import subsequences

    r = client.post("/api/subsequences", json={"length": 6})
    subs = r.json()["subsequences"]
    assert subs and all(len(s["frames"]) == 6 for s in subs)
    best = subsequences(session.D, 6, count=10)[0]
    assert subs[0]["cost"] <= best.cost + 1e-12


def test_atlas_and_frames_are_images(client, session):
    info = client.get("/api/info").json()
    atlas = Image.open(io.BytesIO(client.get("/api/atlas/0.jpg").content))
    assert atlas.format == "JPEG" and atlas.width >= info["atlas"]["cell_w"]
    frame = Image.open(io.BytesIO(client.get("/api/frame/3.png").content))
    assert np.array_equal(np.asarray(frame.convert("RGB")), session.frames.array[3])


def test_export_writes_unique_files_only_into_the_output_folder(client, session):
    import av

    from reseq.studio import read_project

    state = {"keys": [0, 11, 5], "closed": True, "excluded": [20], "mode": "keys",
             "path": "/tmp/elsewhere.mp4"}
    a = client.post("/api/export", json={"state": state, "format": "mp4", "fps": 10}).json()
    b = client.post("/api/export", json={"state": state, "format": "gif", "fps": 10}).json()
    files = [Path(p) for p in a["files"] + b["files"]]
    assert len(set(files)) == len(files) == 6
    out = session.out_dir.resolve()
    assert all(p.resolve().parent == out and p.exists() for p in files)
    seq = client.post("/api/sequence", json={"state": state}).json()["frames"]
    mp4 = next(p for p in files if p.suffix == ".mp4")
    with av.open(str(mp4)) as c:
        assert sum(1 for _ in c.decode(video=0)) == len(seq)
    gif = next(p for p in files if p.suffix == ".gif")
    assert Image.open(gif).n_frames >= 2
    index = json.loads(next(p for p in files if p.name.endswith(".json")
                            and "project" not in p.name).read_text())
    assert [r["source_index"] for r in index] == seq
    proj = read_project(next(p for p in files if p.name.endswith(".reseq-project.json")))
    assert proj["state"]["keys"] == [0, 11, 5] and proj["state"]["excluded"] == [20]
    assert proj["labels"] == session.frames.labels
    _one_line_error(client.post("/api/export", json={"state": state, "format": "exe"}), 400)
    _one_line_error(client.post("/api/export", json={"state": {"keys": []}}), 400)


def test_project_state_reopens(session):
    from reseq.studio import Session, check_state

    state = check_state({"keys": [3, 9], "closed": False, "excluded": [1], "mode": "loop",
                         "loop_frame": 3, "loop_length": 8, "fps": 8}, session.n)
    s = Session(session.frames, session.D, settings=session.settings, state=state)
    assert s.info()["state"] == state


# ---- the CLI contract -------------------------------------------------------------------


def _start(dev_clips: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-c", "from reseq.cli import main; main()", "studio",
           str(dev_clips / CLIP), "--size", "64", "--port", "0", "--no-browser",
           "--out", str(tmp_path / "out"), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, line


@pytest.mark.parametrize(("sig", "extra"), [(signal.SIGTERM, ("--project",)),
                                            (signal.SIGINT, ("--host", "0.0.0.0"))])
def test_cli_prints_one_url_line_and_exits_0_on_signal(dev_clips, tmp_path, session, sig,
                                                       extra):
    state = {"keys": [3, 9, 14], "closed": True, "excluded": [1], "mode": "keys"}
    if extra == ("--project",):  # a project file reopens with its state
        proj = tmp_path / "p.reseq-project.json"
        proj.write_text(json.dumps(session.project(state)))
        extra = ("--project", str(proj))
    proc, line = _start(dev_clips, tmp_path, *extra)
    try:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", line)
        assert m, line
        base = f"http://127.0.0.1:{m.group(1)}"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/api/frames", timeout=10)
        assert err.value.code == 403
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        page = opener.open(f"{base}/?token={m.group(2)}", timeout=10).read().decode()
        assert 'data-testid="mst-view"' in page
        frames = json.loads(opener.open(f"{base}/api/frames", timeout=10).read())["frames"]
        assert len(frames) == 22
        info = json.loads(opener.open(f"{base}/api/info", timeout=10).read())
        if "--project" in extra:
            assert {k: info["state"][k] for k in state} == state
    finally:
        proc.send_signal(sig)
        try:
            out, err_text = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err_text
    assert out == ""  # exactly one line on stdout
    assert ("reseq: warning: --host 0.0.0.0" in err_text) == ("--host" in extra)
    assert "Traceback" not in err_text


def test_cli_bad_project_is_one_error_line(run_cli, dev_clips, tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text("{}")
    r = run_cli("studio", dev_clips / CLIP, "--size", "64", "--no-browser", "--project", bad,
                timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("reseq: error:")
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_cli_project_for_other_frames_is_refused(run_cli, dev_clips, tmp_path, session):
    proj = tmp_path / "p.reseq-project.json"
    proj.write_text(json.dumps(session.project({"keys": [0, 4]})))
    r = run_cli("studio", dev_clips / "cyc_kenney_robot_walk", "--size", "64", "--no-browser",
                "--project", proj, timeout=120)
    assert r.returncode == 2 and "other frames" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_studio_imports_no_torch():
    code = "import sys, reseq.studio, reseq.cli.studio; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    assert out == "False"


def test_server_socket_is_tcp(session):
    # asyncio sets TCP_NODELAY only on sockets created as IPPROTO_TCP; without it every
    # keep-alive response waited for a delayed ACK (about 40 ms a request)
    import socket

    from reseq.studio import StudioServer

    with StudioServer(session) as srv:
        assert srv.sock.proto == socket.IPPROTO_TCP
        assert srv.url.startswith(f"http://127.0.0.1:{srv.port}/?token=")


@pytest.fixture(scope="module")
def synth_client(session, tmp_path_factory):
    """A studio started with a (tiny, quickly trained) VAE: synthesis at the worst step."""
    from starlette.testclient import TestClient

    from reseq.studio import Session, create_app
    from reseq.synth import train_vae

    ckpt = tmp_path_factory.mktemp("vae") / "vae.pt"
    train_vae(session.frames.array, size=16, latent=4, epochs=1, batch=8, checkpoint=ckpt,
              show_progress=False)
    s = Session(session.frames, session.D, settings=session.settings, model=str(ckpt),
                out_dir=tmp_path_factory.mktemp("synth-out"))
    s.compute(progress=False)
    c = TestClient(create_app(s, "tok", [HOST]), base_url=f"http://{HOST}",
                   follow_redirects=False)
    assert c.get("/?token=tok").status_code == 303
    return c, s


def test_synthesized_inbetweens_play_and_export(synth_client, client):
    c, s = synth_client
    assert c.get("/api/info").json()["synthesis"] is True
    state = {"keys": [0, 11], "synth": {"2": 3}}
    seq = c.post("/api/sequence", json={"state": state}).json()
    f = seq["frames"]
    assert seq["synthetic"] == [{"after": 2, "count": 3, "a": f[2], "b": f[3]}]
    png = Image.open(io.BytesIO(c.get(f"/api/synth/{f[2]}/{f[3]}/3/1.png").content))
    assert png.size == (s.frames.width, s.frames.height)
    _one_line_error(c.get(f"/api/synth/{f[2]}/{f[3]}/3/3.png"), 400)
    _one_line_error(c.get(f"/api/synth/{f[2]}/99/3/0.png"), 400)
    out = c.post("/api/export", json={"state": state, "format": "gif"}).json()
    assert out["frames"] == len(f) + 3
    index = json.loads(next(Path(p) for p in out["files"] if p.endswith(".json")
                            and "project" not in p).read_text())
    assert [r["synthetic"] for r in index] == [False] * 3 + [True] * 3 + [False] * (len(f) - 3)
    assert [r["source_index"] for r in index if not r["synthetic"]] == f
    # without --model, the same state is refused (and synthesis is not offered)
    assert client.get("/api/info").json()["synthesis"] is False
    assert "--model" in _one_line_error(client.post("/api/sequence", json={"state": state}), 400)


def test_cli_port_in_use_is_one_error_line(run_cli, dev_clips):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_cli("studio", dev_clips / "cyc_kenney_robot_walk", "--size", "64",
                    "--no-browser", "--port", port, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"reseq: error: cannot listen on 127.0.0.1:{port}: ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_page_shows_progress_before_the_collection_is_ready(session):
    from starlette.testclient import TestClient

    from reseq.studio import Session, create_app

    s = Session(session.frames, None, settings=session.settings)  # compute() not run yet
    c = TestClient(create_app(s, "t", [HOST]), base_url=f"http://{HOST}",
                   follow_redirects=False)
    assert c.get("/?token=t").status_code == 303
    assert c.get("/").status_code == 200  # the page loads and polls the status
    status = c.get("/api/status").json()
    assert status["ready"] is False and status["stage"] and status["n"] == session.n
    assert "still preparing" in _one_line_error(c.get("/api/frames"), 503)
    s.compute(progress=False)  # the matrix from the cache
    assert c.get("/api/status").json()["ready"] is True
    assert len(c.get("/api/frames").json()["frames"]) == session.n
