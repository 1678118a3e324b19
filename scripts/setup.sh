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
