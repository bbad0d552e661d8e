#!/usr/bin/env bash
# Set up (idempotent), then open qa's interactive session over the default corpus.
# The first run also builds the index of corpus/ into embeddings/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/qa "$@"
