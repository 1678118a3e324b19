"""Shared, session-scoped fixtures: the reference data, real clips, sample media, the CLI.

- ``shared_dir``: ``../shared`` relative to the repository root (read-only reference data);
- ``dev_clips``: ``shared_dir / "dev-clips"``, real animation clips as PNG frames in true order;
- ``bunny_video``: the Big Buck Bunny MP4 (1280x720, 132 frames) from :mod:`reseq.assets`;
- ``kenney_dir``: the folder of Kenney characters (one sub-folder each) from :mod:`reseq.assets`;
- ``clip_frames(name, size=64)``: a dev clip loaded as :class:`reseq.frames.Frames` (cached);
- ``run_cli(*args)``: runs the ``reseq`` command in a subprocess, returns the CompletedProcess;
  ``run_cli(*args, unprivileged=True)`` runs it where file permission bits apply even as root;
- ``unprivileged``: that command prefix (``[]`` for a normal user; ``setpriv`` dropping root's
  DAC capabilities otherwise), for tests of unreadable/unwritable paths;
- ``dask_cluster``: the address of a real ``dask scheduler`` with two ``dask worker`` processes
  (``w0``, ``w1``, one thread each, dashboards off) on 127.0.0.1, shared by the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = (REPO_ROOT / ".." / "shared").resolve()
    if not (path / "dev-clips").is_dir():
        pytest.fail(f"reference data missing: expected {path} (../shared from the repository root)")
    return path


@pytest.fixture(scope="session")
def dev_clips(shared_dir: Path) -> Path:
    return shared_dir / "dev-clips"


@pytest.fixture(scope="session")
def bunny_video() -> Path:
    from reseq.assets import sample_source

    return sample_source("bunny")


@pytest.fixture(scope="session")
def kenney_dir() -> Path:
    from reseq.assets import sample_source

    return sample_source("kenney")


@pytest.fixture(scope="session")
def clip_frames(dev_clips: Path) -> Callable:
    """Factory: ``clip_frames("cyc_kenney_robot_walk", size=64)`` -> Frames (cached per session).

    Returns the same Frames object for the same arguments; don't modify its array in place.
    """
    from reseq.frames import load_frames

    cache: dict = {}

    def load(name: str, size: int | None = 64):
        key = (name, size)
        if key not in cache:
            path = dev_clips / name
            if not path.is_dir():
                raise ValueError(f"no dev clip {name!r} in {dev_clips}")
            cache[key] = load_frames(path, size=size, progress=False)
        return cache[key]

    return load


def _cli_command() -> list[str]:
    script = Path(sys.executable).parent / "reseq"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from reseq.cli import main; main()"]


def _unprivileged_prefix() -> list[str] | None:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


@pytest.fixture(scope="session")
def unprivileged() -> list[str]:
    """Command prefix under which permission bits apply (root ignores them otherwise)."""
    prefix = _unprivileged_prefix()
    if prefix is None:
        pytest.fail("running as root without setpriv (util-linux): cannot test permissions")
    return prefix


@pytest.fixture(scope="session")
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """``run_cli("frames", "sample:bunny", env={...}, timeout=120)``: run reseq, capture text."""
    base = _cli_command()

    def run(*args: str, env: dict | None = None, timeout: float = 300,
            unprivileged: bool = False, **kwargs) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **(env or {})}
        prefix: list[str] = []
        if unprivileged:
            prefix = _unprivileged_prefix()
            if prefix is None:
                pytest.fail("running as root without setpriv: cannot drop file capabilities")
        return subprocess.run([*prefix, *base, *map(str, args)], capture_output=True,
                              text=True, env=full_env, timeout=timeout, check=False, **kwargs)

    return run


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory, unprivileged) -> str:
    """``tcp://127.0.0.1:PORT`` of a real scheduler and two worker processes named w0, w1
    (dashboards off, one thread each; stopped after). The workers run without root's power to
    read any file (``unprivileged``), as workers of another user would: permission bits apply to
    them and not to the test process."""
    import time

    pytest.importorskip("distributed")
    dask_cli = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    assert dask_cli, "the dask command (dask[distributed]) is not installed"
    tmp = tmp_path_factory.mktemp("dask")
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    procs = [subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        for w in range(2):
            procs.append(subprocess.Popen(
                [*unprivileged, dask_cli, "worker", addr, "--nthreads", "1", "--no-dashboard",
                 "--no-nanny",
                 "--name", f"w{w}", "--local-directory", str(tmp / f"w{w}")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.monotonic() + 90
        while True:  # the scheduler needs a moment to listen
            try:
                client = Client(addr, timeout=5, set_as_default=False)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        with client:
            client.wait_for_workers(2, timeout=90)
        yield addr
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
