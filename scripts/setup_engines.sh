#!/usr/bin/env bash
# The side environment of the `engines` tests (tests/serve): vLLM 0.33.0, SGLang 0.5.23 and lmdeploy 0.18.0 over
# fope's CPU torch 2.13.0, never in .venv.
#
#   bash scripts/setup_engines.sh        # idempotent; creates .venv-engines (gitignored)
#
# .venv-engines sees .venv's packages (torch 2.13.0+cpu, transformers, fope's deps) through a .pth file placed after
# its own site-packages, so its own installs win; vllm is installed with --no-deps (a plain `pip install vllm`
# pulls CUDA torch and several GB), then the few packages its import of the rotary layer and the model registry
# needs. VLLM_WHEEL: a local vllm-0.33.0 wheel to install instead of PyPI's.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-engines
VLLM_VERSION=0.33.0
if [ ! -x .venv/bin/python ]; then echo "[setup_engines] run scripts/setup.sh first (.venv missing)" >&2; exit 1; fi
if [ ! -x "$VENV/bin/python" ]; then
  .venv/bin/python -m venv "$VENV"
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
base=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import sys; sys.path.append('$base')" > "$site/zz_fope_base.pth"
if ! "$VENV/bin/python" -c "import importlib.metadata as m; assert m.version('vllm') == '$VLLM_VERSION'" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "${VLLM_WHEEL:-vllm==$VLLM_VERSION}"
fi
# what `import vllm` and its rotary / registry modules need beyond .venv (no torch, no CUDA wheels)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  "cloudpickle" "msgspec" "pydantic>=2.10" "pyzmq" "cachetools" "blake3" "gguf" "openai" "prometheus_client" \
  "psutil" "py-cpuinfo" "sentencepiece" "tiktoken" "partial-json-parser" "cbor2" "setproctitle" "diskcache" \
  "lark" "einops" "compressed-tensors" "depyf" "llguidance" "mistral_common" "openai-harmony" "pybase64" \
  "ijson" "watchfiles" "python-json-logger" "outlines_core" "xgrammar" "fastapi" "uvicorn" "anthropic" \
  "prometheus-fastapi-instrumentator" "model-hosting-container-standards" "uvloop" 2>&1 | grep -v "^\s*$" | grep -iv "warning" || true
# SGLang's and lmdeploy's FoPE layers (their rotary modules only; --no-deps, what their import needs)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "sglang==0.5.23" "lmdeploy==0.18.0" 2>&1 \
  | grep -iv "requires\|dependency\|warning" || true
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "orjson" "mmengine" "IPython" 2>&1 \
  | grep -iv "requires\|dependency\|warning" || true
"$VENV/bin/python" -c "import vllm, torch; print('[setup_engines] vllm', vllm.__version__, 'torch', torch.__version__)"
