#!/usr/bin/env bash
# Integration tests for `verity serve` (and `verity gateway` / `verity worker`): starts the built binary (VERITY_BIN, default
# .build/release/verity) on loopback ports and drives it with the official openai SDK.
# Installs the Python packages it needs when they are missing. Extra arguments go to pytest
# (e.g. `Tests/ServerIntegration/run.sh -k stream`).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"

./install-deps

exec "$PY" -m pytest -x -q "$@"
