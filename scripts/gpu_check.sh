#!/usr/bin/env bash
# The prepared GPU check (README "GPU", docs/engine.md "The GPU check"): on a machine with one CUDA
# GPU, writes JSON lines to OUT_DIR/gpu_check.jsonl (and the gpu tests' report and log) in under
# 8 minutes; exits 2 with one line on a machine without CUDA.
#
#   scripts/gpu_check.sh OUT_DIR [--budget-s S] [--tokenizer DIR]
#
# Needs python3 with torch (CUDA), tokenizers, safetensors, huggingface_hub; transformers for the
# reference side of the bench; pytest for the gpu tests. What the machine lacks can be carried:
#   .gpu/codegen-tokenizer/  the CodeGen tokenizer folder (else $CODEGEN_SHARED_DATA/codegen-tokenizer)
#   .gpu/whl/*.whl           wheels (e.g. pytest and its dependencies), installed into a private
#                            folder only when the package does not already import
set -u
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: scripts/gpu_check.sh OUT_DIR [--budget-s S] [--tokenizer DIR]" >&2
    exit 2
fi
OUT_DIR=$1
shift
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -z "${CODEGEN_SHARED_DATA:-}" ] && [ -d "$REPO/.gpu/codegen-tokenizer" ]; then
    export CODEGEN_SHARED_DATA="$REPO/.gpu"
fi
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "error: gpu_check needs $PY with torch installed; this machine has none" >&2
    exit 2
fi
if ls "$REPO"/.gpu/whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import pytest" 2>/dev/null; then
    SITE=$(mktemp -d /tmp/gpu_check_site.XXXXXX)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$REPO"/.gpu/whl/*.whl \
        || { echo "error: the wheels in .gpu/whl did not install (see pip's message above)" >&2; exit 2; }
    export PYTHONPATH="$PYTHONPATH:$SITE"
fi

# A hard stop a little past the Python side's own budget (450 s): the lines written so far stay.
timeout --signal=TERM --kill-after=10 "${GPU_CHECK_TIMEOUT_S:-470}" "$PY" -m codegen_model.gpu_check "$OUT_DIR" "$@"
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    mkdir -p "$OUT_DIR"
    echo "{\"part\": \"summary\", \"ok\": false, \"error\": \"stopped by the ${GPU_CHECK_TIMEOUT_S:-470} s time limit\"}" \
        >> "$OUT_DIR/gpu_check.jsonl"
    echo "error: gpu_check stopped by its ${GPU_CHECK_TIMEOUT_S:-470} s time limit; the lines written so far are in $OUT_DIR/gpu_check.jsonl" >&2
fi
exit $rc
