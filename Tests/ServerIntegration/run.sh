#!/usr/bin/env bash
# Integration tests for `verity serve` (and `verity gateway` / `verity worker`): starts the built binary (VERITY_BIN, default
# .build/release/verity) on loopback ports and drives it with the official openai SDK.
# Installs the Python packages it needs when they are missing. Extra arguments go to pytest
# (e.g. `Tests/ServerIntegration/run.sh -k stream`).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"

pip_install() {
    # A Debian/Ubuntu system Python refuses pip installs (PEP 668) unless told otherwise.
    "$PY" -m pip install --quiet "$@" 2>/dev/null \
        || "$PY" -m pip install --quiet --break-system-packages "$@" \
        || "$PY" -m pip install --quiet --user --break-system-packages "$@"
}

PACKAGES="openai httpx jsonschema pyyaml pytest selenium cryptography"
if ! "$PY" -c 'import openai, httpx, jsonschema, yaml, pytest, selenium, cryptography' 2>/dev/null; then
    echo "installing Python test dependencies ($PACKAGES)..." >&2
    pip_install $PACKAGES
fi

# The Hugging Face tests (test_11_hub.py, test_12_hf_models.py) check Verity against the reference
# implementations: huggingface_hub's cache, transformers (torch, CPU build: the +cpu wheel from the
# machine's wheel folder, never the CUDA one) and the tokenizers library; the fine-tune tests
# (test_13_lora.py, test_14_bnb.py) against peft and bitsandbytes (its CPU backend).
HF_PACKAGES="torch==2.13.0+cpu transformers==5.25.0 tokenizers==0.23.3 huggingface_hub==2.4.0 safetensors==0.8.0 gguf==0.19.0 accelerate==1.16.0 peft==0.21.2 bitsandbytes==0.50.2 numpy"
if ! "$PY" -c 'import torch, transformers, tokenizers, huggingface_hub, safetensors, gguf, accelerate, peft, bitsandbytes, numpy' 2>/dev/null; then
    echo "installing the Hugging Face reference packages ($HF_PACKAGES)..." >&2
    pip_install $HF_PACKAGES
fi

# The fleet test (test_10_fleet.py) puts a worker in front of a real external engine:
# llama-cpp-python's OpenAI server. PyPI has only its source; pip builds llama.cpp (about 10
# minutes on 2 cores) once and keeps the wheel in its cache.
LLAMA_CPP_PYTHON="llama-cpp-python[server]==0.3.36"
if ! "$PY" -c 'import llama_cpp.server.app' 2>/dev/null; then
    echo "installing $LLAMA_CPP_PYTHON for the fleet test (builds llama.cpp: about 10 minutes the first time)..." >&2
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" pip_install "$LLAMA_CPP_PYTHON"
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
