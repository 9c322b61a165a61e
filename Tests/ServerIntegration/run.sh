#!/usr/bin/env bash
# Integration tests for `verity serve`: starts the built binary (VERITY_BIN, default
# .build/release/verity) on loopback ports and drives it with the official openai SDK.
# Installs the Python packages it needs when they are missing. Extra arguments go to pytest
# (e.g. `Tests/ServerIntegration/run.sh -k stream`).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"

PACKAGES="openai httpx jsonschema pyyaml pytest selenium"
if ! "$PY" -c 'import openai, httpx, jsonschema, yaml, pytest, selenium' 2>/dev/null; then
    echo "installing Python test dependencies ($PACKAGES)..." >&2
    # A Debian/Ubuntu system Python refuses pip installs (PEP 668) unless told otherwise.
    "$PY" -m pip install --quiet $PACKAGES 2>/dev/null \
        || "$PY" -m pip install --quiet --break-system-packages $PACKAGES \
        || "$PY" -m pip install --quiet --user --break-system-packages $PACKAGES
fi

# The web chat's browser test drives Debian's Chromium through its chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "installing chromium and chromium-driver (Debian packages) for the web chat test..." >&2
    if [ "$(id -u)" = 0 ]; then apt=(apt-get); elif command -v sudo >/dev/null; then apt=(sudo apt-get); else
        echo "error: chromium and chromium-driver are missing and this user cannot install them (apt-get needs root)" >&2; exit 1
    fi
    "${apt[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

exec "$PY" -m pytest -x -q "$@"
