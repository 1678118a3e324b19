"""Serving a :class:`~reseq.studio.session.Session`: uvicorn in a thread on a socket bound here.

:class:`StudioServer` binds the socket itself (port 0: the system picks a free one, no race),
runs ``uvicorn.Server`` in a daemon thread (so uvicorn installs no signal handlers; the caller
owns SIGINT/SIGTERM) and knows its URL with the token. The CLI, the tests and the benchmark all
serve through it.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import time

from ..errors import ReseqError
from .app import create_app
from .session import Session

__all__ = ["StudioServer", "allowed_hosts"]


def allowed_hosts(host: str, port: int) -> list[str]:
    """``Host`` header values this server answers to: its own address (and ``localhost`` on
    loopback). Bound to all interfaces, any IP literal with the port is accepted (a DNS
    rebinding attack needs a host name); host names other than ``localhost`` never are."""
    names = {host, "127.0.0.1", "localhost"} if _loopback(host) else {host}
    out = set()
    for h in names:
        literal = f"[{h}]" if ":" in h else h
        out.add(f"{literal}:{port}")
    return sorted(out)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class _AnyIPGuard:
    """Host check for a server bound to all interfaces: IP literals with the right port."""

    def __init__(self, port: int) -> None:
        self.port = port

    def __call__(self, host: str) -> bool:
        name, _, port = host.rpartition(":")
        if port != str(self.port):
            return False
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            return name == "localhost"
        return True


class StudioServer:
    """The studio on ``host:port`` (port 0: any free port). ``start()`` returns once accepting;
    ``url`` carries the token; ``stop()`` shuts down."""

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None) -> None:
        import uvicorn

        self.session = session
        self.host = host
        self.token = token or secrets.token_urlsafe(24)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP
        # (without it every keep-alive response waited ~40 ms for a delayed ACK)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ReseqError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        sock.listen(128)
        sock.setblocking(False)
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.app = create_app(session, self.token, allowed_hosts(host, self.port))
        if host in ("0.0.0.0", "::"):
            self.app.host_ok = _AnyIPGuard(self.port)  # type: ignore[method-assign]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/?token={self.token}"

    def start(self, timeout: float = 30.0) -> StudioServer:
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True, name="reseq-studio-server")
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive():
                raise ReseqError("the studio server failed to start")
            if time.monotonic() - t0 > timeout:
                raise ReseqError("the studio server did not start in time")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> StudioServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
