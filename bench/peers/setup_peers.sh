#!/usr/bin/env bash
# Build the peers of bench/bench_decoder.py, each in its own git-ignored place under bench/peers/:
#   .venv-optimum   optimum-executorch 1.1.0 (+ the transformers 5.0.0rc1 it pins), over our torch/executorch
#   .venv-llamacpp  llama.cpp's convert_hf_to_gguf.py + gguf-py (vendored in llama-cpp-python's sdist)
#   .llamacpp/      llama.cpp from that sdist, built here with -march=native: llama-bench, llama-quantize
#   .venv-ort       onnx + onnxscript (torch.onnx.export) for the ONNX Runtime vision peer; onnxruntime
#                   itself is the main venv's (a core dependency)
# Both venvs see the main .venv's site-packages through a .pth placed *after* their own, so
# torch==2.13.0 (and executorch 1.5.1) are the very installation the main project uses and pip
# never resolves another torch; peer packages are installed with --no-deps at exact pins.
# Idempotent: finished steps are skipped. Usage: bench/peers/setup_peers.sh [optimum|llamacpp|ort|all]
set -euo pipefail
cd "$(dirname "$0")"
PEERS=$(pwd)
BASE_SITE=$(cd ../.. && .venv/bin/python -c "import site; print(site.getsitepackages()[0])")
PY=../../.venv/bin/python
what=${1:-all}

make_venv() {  # make_venv NAME: a venv that falls back to the main venv's packages
  local venv=$PEERS/$1
  if [ ! -x "$venv/bin/python" ]; then
    "$($PY -c 'import sys; print(sys._base_executable)')" -m venv "$venv"
  fi
  local site
  site=$("$venv/bin/python" -c "import site; print(site.getsitepackages()[0])")
  echo "$BASE_SITE" > "$site/zz_mobile_mllm_base.pth"
}

pipi() {  # pipi VENV ARGS...: pip install without dependency resolution, hiding index noise
  local venv=$PEERS/$1; shift
  "$venv/bin/python" -m pip install -q --no-deps "$@" 2>&1 | { grep -v -i "is ignored" || true; }
  return "${PIPESTATUS[0]}"
}

if [ "$what" = optimum ] || [ "$what" = all ]; then
  make_venv .venv-optimum
  pipi .venv-optimum optimum-executorch==1.1.0 optimum==2.0.0 transformers==5.0.0rc1 \
    "huggingface_hub==1.3.0" tokenizers==0.22.1 accelerate==1.12.0 \
    typer-slim==0.24.0 psutil==7.2.2
  .venv-optimum/bin/python -c "import torch, transformers, optimum.executorch; print('optimum venv: torch', torch.__version__, 'transformers', transformers.__version__)"
fi

if [ "$what" = llamacpp ] || [ "$what" = all ]; then
  src=$PEERS/.llamacpp/src
  if [ ! -f "$src/vendor/llama.cpp/CMakeLists.txt" ]; then
    mkdir -p .llamacpp/dl
    "$PY" -m pip download -q --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d .llamacpp/dl 2>&1 | { grep -v -i "is ignored" || true; }
    mkdir -p "$src"
    tar -xzf .llamacpp/dl/llama_cpp_python-0.3.36.tar.gz -C "$src" --strip-components=1
  fi
  if [ ! -x .llamacpp/build/bin/llama-bench ]; then
    cmake -S "$src/vendor/llama.cpp" -B .llamacpp/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
      -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
    cmake --build .llamacpp/build --target llama-bench llama-quantize -j "$(nproc)" >/dev/null
  fi
  make_venv .venv-llamacpp
  pipi .venv-llamacpp "$src/vendor/llama.cpp/gguf-py"
  .venv-llamacpp/bin/python -c "import gguf, torch; print('llamacpp venv: gguf ok, torch', torch.__version__)"
fi

if [ "$what" = ort ] || [ "$what" = all ]; then
  make_venv .venv-ort
  pipi .venv-ort onnx==1.23.2 onnxscript==0.7.2 onnx-ir==1.1.0 ml_dtypes==0.6.0
  .venv-ort/bin/python -c "import onnx, onnxscript, onnxruntime, torch; print('ort venv: onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__, 'torch', torch.__version__)"
fi
