#!/usr/bin/env bash
# Create .venv and install reseq into it (editable). `--dev` adds test tools.
# Pins from constraints/ci.txt (torch CPU build) apply here only; `pip install .` elsewhere is unpinned.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints/ci.txt -e ".${extras}"
.venv/bin/python -c "import reseq, torch; print(f'reseq {reseq.__version__} ready (torch {torch.__version__})')"
# the studio's browser tests drive Debian's chromium-headless-shell (never `playwright install`)
if [ -n "$extras" ] && ! command -v chromium-headless-shell >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium-headless-shell
    else
        echo "note: the studio's browser tests need chromium-headless-shell; as root: apt-get install --no-install-recommends chromium-headless-shell" >&2
    fi
fi
# compile the solver's numba kernels now (once per install, about a minute of CPU; cached on disk),
# so the first `reseq order` / `reseq loop` does not pay for it
echo "compiling the sequencing kernels (once)..."
.venv/bin/python -c "
import numpy as np
from reseq.graph import loop, order
x = np.random.default_rng(0).random((40, 2))
D = ((x[:, None] - x[None]) ** 2).sum(-1)
order(D); order(D, start=0, end=5); loop(D)
"
