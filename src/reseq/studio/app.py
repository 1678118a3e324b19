"""The studio's web server: a small Starlette app over a :class:`~reseq.studio.session.Session`.

Security (a local server is still a server), in :class:`Guard`, in front of every route:

- a request whose ``Host`` header is not one of the server's own addresses gets 403 (a DNS
  rebinding page cannot name a host of its own); so does a cross-origin ``Origin`` header;
- ``GET /?token=T`` with the random token printed by the CLI sets an HttpOnly, SameSite=Strict
  session cookie and redirects to ``/`` (so the token leaves the address bar); every other
  request without that cookie gets 403;
- frames and thumbnails are addressed by index only and static files by a fixed list of names,
  so no path from the client reaches the file system; exports go into the session's output
  folder under names the server picks;
- a bad request (unknown index, a key list naming a frame twice, malformed JSON) gets a 4xx with
  a one-line JSON ``{"error": ...}``, and the server keeps serving.

Heavy work (trees, paths, orders, atlases, exports) runs in Starlette's thread pool, off the
event loop.
"""

from __future__ import annotations

import json
import secrets
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ReseqError
from .session import Session

__all__ = ["Guard", "create_app"]

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


class Guard:
    """ASGI middleware: Host/Origin check, token -> cookie exchange, cookie required."""

    def __init__(self, app, token: str, hosts: list[str]) -> None:
        self.app = app
        self.token = token
        self.hosts = set(hosts)
        self.secret = secrets.token_urlsafe(32)
        self.cookie = f"reseq_studio_{secrets.token_hex(4)}"

    def host_ok(self, host: str) -> bool:
        return host in self.hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if not self.host_ok(host):
            await _error(403, "forbidden: unknown Host")(scope, receive, send)
            return
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            await _error(403, "forbidden: cross-origin request")(scope, receive, send)
            return
        if scope["path"] == "/" and scope["method"] == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [""])[0]
            if given:
                if not secrets.compare_digest(given.encode(), self.token.encode()):
                    await _error(403, "forbidden: wrong token")(scope, receive, send)
                    return
                resp = Response(status_code=303, headers={"Location": "/",
                                                          "Cache-Control": "no-store"})
                resp.set_cookie(self.cookie, self.secret, httponly=True, samesite="strict",
                                path="/")
                await resp(scope, receive, send)
                return
        if not self._has_cookie(headers.get("cookie", "")):
            await _error(403, "forbidden: open the URL that reseq studio printed (it carries "
                              "the token)")(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _has_cookie(self, header: str) -> bool:
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie and secrets.compare_digest(value.encode(),
                                                              self.secret.encode()):
                return True
        return False


def _static_files() -> dict[str, tuple[bytes, str]]:
    files = {}
    root = resources.files("reseq.studio") / "static"
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ReseqError("malformed JSON") from None
    if not isinstance(body, dict):
        raise ReseqError("the request body must be a JSON object")
    return body


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReseqError(f"{what} must be an integer")
    return value


def _int_list(body: dict, name: str) -> list[int]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ReseqError(f"{name} must be a list of frame indices")
    return value


def create_app(session: Session, token: str, hosts: list[str]) -> Guard:
    """The ASGI app for ``session``: routes behind a :class:`Guard` with ``token`` and the
    accepted ``Host`` header values ``hosts`` (``"127.0.0.1:PORT"``, ...)."""
    static = _static_files()

    def ready_required(fn):
        async def wrapped(request: Request) -> Response:
            if not session.ready.is_set() or session.error is not None:
                return _error(503, session.error or f"still preparing: {session.stage}")
            try:
                return await fn(request)
            except ReseqError as exc:
                return _error(400, str(exc))
        return wrapped

    async def index(request: Request) -> Response:
        data, kind = static["index.html"]
        return Response(data, media_type=kind, headers={"Cache-Control": "no-store"})

    async def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return _error(404, "no such file")
        data, kind = static[name]
        return Response(data, media_type=kind, headers={"Cache-Control": "no-cache"})

    async def status(request: Request) -> Response:
        return JSONResponse(session.status())

    @ready_required
    async def info(request: Request) -> Response:
        return JSONResponse(session.info())

    @ready_required
    async def frames(request: Request) -> Response:
        return JSONResponse({"frames": session.labels()})

    @ready_required
    async def layout(request: Request) -> Response:
        style = request.query_params.get("style", "mst")
        if style not in session._styles():
            raise ReseqError(f"unknown layout style {style!r}")
        pos, edges = await run_in_threadpool(session.layout, style)
        return JSONResponse({"style": style, "points": [
            {"index": i, "x": float(x), "y": float(y)} for i, (x, y) in enumerate(pos)],
            "edges": edges})

    @ready_required
    async def tree(request: Request) -> Response:
        body = await _json_body(request)
        excluded = _int_list(body, "excluded")
        edges = await run_in_threadpool(session.tree_edges, excluded)
        return JSONResponse({"edges": edges})

    def _index_param(request: Request) -> int:
        try:
            return int(request.path_params["i"])
        except ValueError:
            raise ReseqError("a frame is addressed by its index") from None

    @ready_required
    async def frame(request: Request) -> Response:
        data = await run_in_threadpool(session.frame_png, _index_param(request))
        return Response(data, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    @ready_required
    async def atlas(request: Request) -> Response:
        data = await run_in_threadpool(session.atlas, _index_param(request))
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    @ready_required
    async def distances(request: Request) -> Response:
        i = _index_param(request)
        return JSONResponse({"index": i, "distances": session.row(i)})

    @ready_required
    async def inbetweens(request: Request) -> Response:
        body = await _json_body(request)
        keys = _int_list(body, "keys")
        excluded = _int_list(body, "excluded")
        res = await run_in_threadpool(session.inbetweens, keys, bool(body.get("closed")),
                                      excluded)
        return JSONResponse(res)

    @ready_required
    async def sequence(request: Request) -> Response:
        body = await _json_body(request)
        res = await run_in_threadpool(session.sequence, body.get("state", body))
        return JSONResponse(res)

    @ready_required
    async def order(request: Request) -> Response:
        body = await _json_body(request)
        frames_ = await run_in_threadpool(session.order, _int_list(body, "excluded"))
        return JSONResponse({"frames": frames_, "steps": session.steps(frames_, False)})

    @ready_required
    async def loop(request: Request) -> Response:
        body = await _json_body(request)
        f = body.get("frame")
        n = body.get("length")
        res = await run_in_threadpool(
            session.loop, None if f is None else _int(f, "frame"),
            None if n is None else _int(n, "length"), _int_list(body, "excluded"))
        return JSONResponse(res)

    @ready_required
    async def subsequences(request: Request) -> Response:
        body = await _json_body(request)
        res = await run_in_threadpool(session.subsequences, _int(body.get("length", 12),
                                                                 "length"),
                                      _int(body.get("count", 10), "count"),
                                      _int_list(body, "excluded"))
        return JSONResponse({"subsequences": res})

    @ready_required
    async def alternatives(request: Request) -> Response:
        body = await _json_body(request)
        res = await run_in_threadpool(
            session.alternatives, _int_list(body, "frames"), _int(body.get("position"),
                                                                  "position"),
            bool(body.get("closed")), _int(body.get("k", 5), "k"), _int_list(body, "excluded"))
        return JSONResponse({"alternatives": res})

    @ready_required
    async def export(request: Request) -> Response:
        body = await _json_body(request)
        res = await run_in_threadpool(session.export, body.get("state", {}),
                                      body.get("format", "mp4"), body.get("fps", 12.0))
        return JSONResponse(res)

    @ready_required
    async def synth(request: Request) -> Response:
        try:
            a, b, count, k = (int(request.path_params[x]) for x in ("a", "b", "count", "k"))
        except ValueError:
            raise ReseqError("a synthesized frame is addressed by numbers") from None
        data = await run_in_threadpool(session.synth_png, a, b, count, k)
        return Response(data, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        return _error(code, "not found" if code == 404 else getattr(exc, "detail", "error"))

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, f"internal error: {type(exc).__name__}")

    routes = [
        Route("/", index),
        Route("/static/{name}", static_file),
        Route("/api/status", status),
        Route("/api/info", info),
        Route("/api/frames", frames),
        Route("/api/layout", layout),
        Route("/api/tree", tree, methods=["POST"]),
        Route("/api/frame/{i}.png", frame),
        Route("/api/atlas/{i}.jpg", atlas),
        Route("/api/distances/{i}", distances),
        Route("/api/inbetweens", inbetweens, methods=["POST"]),
        Route("/api/sequence", sequence, methods=["POST"]),
        Route("/api/order", order, methods=["POST"]),
        Route("/api/loop", loop, methods=["POST"]),
        Route("/api/subsequences", subsequences, methods=["POST"]),
        Route("/api/alternatives", alternatives, methods=["POST"]),
        Route("/api/export", export, methods=["POST"]),
        Route("/api/synth/{a}/{b}/{count}/{k}.png", synth),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found,
                                                       500: server_error})
    return Guard(app, token, hosts)
