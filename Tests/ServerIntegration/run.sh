#!/usr/bin/env bash
# Integration tests for `verity serve`: starts the built binary (VERITY_BIN, default
# .build/release/verity) on loopback ports and drives it with the official openai SDK.
# Installs the Python packages it needs when they are missing. Extra arguments go to pytest
# (e.g. `Tests/ServerIntegration/run.sh -k stream`).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"

if ! "$PY" -c 'import openai, httpx, jsonschema, yaml, pytest' 2>/dev/null; then
    echo "installing Python test dependencies (openai httpx jsonschema pyyaml pytest)..." >&2
    # A Debian/Ubuntu system Python refuses pip installs (PEP 668) unless told otherwise.
    "$PY" -m pip install --quiet openai httpx jsonschema pyyaml pytest 2>/dev/null \
        || "$PY" -m pip install --quiet --break-system-packages openai httpx jsonschema pyyaml pytest \
        || "$PY" -m pip install --quiet --user --break-system-packages openai httpx jsonschema pyyaml pytest
fi

exec "$PY" -m pytest -x -q "$@"
