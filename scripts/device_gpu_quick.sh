#!/usr/bin/env bash
# The `gpu-quick` grid as one prepared command for a lent GPU machine that keeps nothing between calls and returns only
# a few files from $OUT (docs/reproduce.md, "gpu-quick on a borrowed GPU").
#
#   here (CPU, once):   bash scripts/device_gpu_quick.sh --prepare   # -> .device/fope-cache.tar.gz
#   on the GPU machine: OUT=... bash scripts/device_gpu_quick.sh [KEY=VALUE ...]   # carry .device/fope-cache.tar.gz
#   vLLM serving check: OUT=... bash scripts/device_gpu_quick.sh --vllm   # needs vLLM installed there (not run yet)
#
# Stage 1 runs the main comparison alone (`--only main`) and packs its report; stage 2 resumes the same grid for the
# ablation arms and the passkey task and packs again, so a run stopped by the time limit still returns stage 1.
# Returned in $OUT: report.md, results.json, console.log (training progress lines stripped) and gpu-quick.tar.gz
# (figures, sessions, every run's config, summary and evaluation JSON; no checkpoints or weights).
# The cache travels compressed (about 30 MB instead of 63 MB: the carry limit is 64 MiB) and is unpacked into
# /tmp/fope-cache. Environment: BUDGET (seconds for both stages, default 540), PYTHON (default .venv/bin/python if
# there, else python3 as on the GPU machine), GRID (the grid directory, default /tmp/fope-gpu-quick; keep it outside
# $OUT), ARCHIVE (default .device/fope-cache.tar.gz).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY="${PYTHON:-python3}"
[[ -z "${PYTHON:-}" && -x .venv/bin/python ]] && PY=.venv/bin/python  # here: the project's venv (scripts/setup.sh)
GRID="${GRID:-/tmp/fope-gpu-quick}"
ARCHIVE="${ARCHIVE:-.device/fope-cache.tar.gz}"

if [[ "${1:-}" == "--vllm" ]]; then
    # fope served by vLLM (docs/huggingface.md, "Serving with vLLM, SGLang and lmdeploy"): export a tiny trained or
    # built FoPE model in the engines' format, serve it through fope's plugin, generate 20 tokens, compare the first
    # logits with fope's. Needs vLLM in $PY's environment on the GPU machine (not installed by this script).
    shift
    set -e
    : "${OUT:?set OUT to the folder whose files come back}"
    mkdir -p "$OUT"
    "$PY" - <<'PY'
import fope.model
cfg = fope.model.ModelConfig(vocab_size=256, d_model=128, n_layers=2, n_heads=4, n_kv_heads=2, train_len=128,
                             pe="fope", pe_options={"out_dim": "full", "sigma": 0.3})
fope.model.save(fope.model.build(cfg).eval(), "/tmp/fope-vllm-native")
PY
    "$PY" -m fope.cli hf export --model /tmp/fope-vllm-native --out /tmp/fope-vllm-engines --format engines
    "$PY" scripts/vllm_serve_check.py /tmp/fope-vllm-engines "$@" | tee "$OUT/vllm-serve.json"
    exit 0
fi

if [[ "${1:-}" == "--prepare" ]]; then
    shift
    # A two-step CPU run of the same grid builds exactly the caches the GPU run reads (the tokenizer and shards are
    # keyed by corpus, tokenizer, retrieval share and length, none of which the overrides below change).
    set -e
    export FOPE_CACHE="$PWD/.device/cache"
    "$PY" -m fope.cli data fetch
    rm -rf /tmp/fope-gpu-quick-prepare
    "$PY" -m fope.cli reproduce --preset gpu-quick --out /tmp/fope-gpu-quick-prepare --no-figures device=cpu \
        steps=2 warmup_steps=1 global_batch=2 micro_batch=2 passkey_steps=2 eval_tokens=1024 eval_batch_tokens=1024 \
        length_factors=1 passkey_factors=1 passkey_trials=1 ablation_passkey_trials=1 train.precision=fp32 "$@"
    rm -rf /tmp/fope-gpu-quick-prepare
    tar -czf "$ARCHIVE" -C "$FOPE_CACHE" .
    du -sh "$FOPE_CACHE" "$ARCHIVE"
    exit 0
fi

: "${OUT:?set OUT to the folder whose files come back}"
if [[ ! -f "$ARCHIVE" ]]; then
    echo "no $ARCHIVE: run bash scripts/device_gpu_quick.sh --prepare first, then carry it" >&2
    exit 2
fi
export FOPE_CACHE=/tmp/fope-cache
mkdir -p "$FOPE_CACHE" && tar -xzf "$ARCHIVE" -C "$FOPE_CACHE"
BUDGET="${BUDGET:-540}"
start=$SECONDS
mkdir -p "$OUT"

pack() {  # the grid's results into at most four files of $OUT
    [[ -f "$GRID/report.md" ]] && cp "$GRID/report.md" "$OUT/report.md"
    [[ -f "$GRID/results.json" ]] && cp "$GRID/results.json" "$OUT/results.json"
    (cd "$GRID" 2>/dev/null && find . \( -name '*.json' -o -name '*.png' -o -name '*.md' -o -name '*.yaml' \) \
        -not -path '*/checkpoint*' -not -path '*/model/*' -print0 | tar --null -czf "$OUT/gpu-quick.tar.gz" -T -)
    grep -av $'\r' "$OUT/.console" > "$OUT/console.log" 2>/dev/null || true
}

stage() {  # stage NAME ARGS...: one `fope reproduce` call within what is left of the budget
    local name=$1 left=$((BUDGET - (SECONDS - start)))
    shift
    if ((left < 30)); then
        echo "== $name: skipped, $left s left of BUDGET=$BUDGET" | tee -a "$OUT/.console"
        return 1
    fi
    echo "== $name: up to $left s ($(date -u +%FT%TZ))" | tee -a "$OUT/.console"
    timeout --signal=TERM --kill-after=20 "$left" "$PY" -m fope.cli reproduce --preset gpu-quick --out "$GRID" "$@" \
        2>&1 | tee -a "$OUT/.console"
    local rc=${PIPESTATUS[0]}
    local why=""
    ((rc == 124 || rc == 137)) && why=" (stopped at the budget; the report covers the runs finished by then)"
    echo "== $name: exit $rc after $((SECONDS - start)) s$why" | tee -a "$OUT/.console"
    pack
    return "$rc"
}

{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  "$PY" -c "import torch; print('torch', torch.__version__)"; } \
    2>&1 | tee -a "$OUT/.console"
stage "stage 1 (main comparison)" --only main "$@"
stage "stage 2 (ablation arms, passkey task)" "$@"
rc=$?
rm -f "$OUT/.console"
exit "$rc"
