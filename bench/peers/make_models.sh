#!/usr/bin/env bash
# The peers' programs, from the SAME random-weight mid decoder as ours (after setup_peers.sh):
#   MODELS/hf_qwen2/             transformers Qwen2 checkpoint (bench_decoder.py hf)
#   MODELS/optimum_8da4w/        optimum-executorch: XNNPACK, 8da4w linears (lm_head included), 8w embedding
#   MODELS/gguf/model-q4_0.gguf  llama.cpp: convert_hf_to_gguf (f16) + llama-quantize Q4_0 (its defaults)
# Ours: bench_decoder.py export --out MODELS/dec_w4.pte [--lm-head w4 --out MODELS/dec_w4_lmw4.pte].
# Usage: bench/peers/make_models.sh [MODELS=/tmp/bench_models/mid]. Existing outputs are kept.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODELS=${1:-/tmp/bench_models/mid}
PEERS=bench/peers
[ -f "$MODELS/hf_qwen2/model.safetensors" ] || .venv/bin/python bench/bench_decoder.py hf --out "$MODELS/hf_qwen2"
if [ ! -f "$MODELS/optimum_8da4w/model.pte" ]; then
  $PEERS/.venv-optimum/bin/optimum-cli export executorch -m "$MODELS/hf_qwen2" -o "$MODELS/optimum_8da4w" \
    --task text-generation --recipe xnnpack --use_custom_sdpa --use_custom_kv_cache \
    --qlinear 8da4w --qembedding 8w --max_seq_len 1024
fi
if [ ! -f "$MODELS/gguf/model-q4_0.gguf" ]; then
  mkdir -p "$MODELS/gguf"
  $PEERS/.venv-llamacpp/bin/python $PEERS/to_gguf.py "$MODELS/hf_qwen2" "$MODELS/gguf/model-f16.gguf"
  $PEERS/.llamacpp/build/bin/llama-quantize "$MODELS/gguf/model-f16.gguf" "$MODELS/gguf/model-q4_0.gguf" Q4_0
fi
