#!/usr/bin/env bash
# Create (or refresh) .venv with the pinned dependencies. Idempotent: re-running with an
# unchanged pyproject.toml does nothing. torch is installed first from the exact pin so
# pip never resolves a newer (CUDA) build.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pipi() {  # pip install, hiding the index's harmless "is ignored" warnings, keeping pip's exit code
  .venv/bin/python -m pip install -q "$@" 2>&1 | { grep -v "is ignored" || true; }
  return "${PIPESTATUS[0]}"
}
echo "setup.sh: installing the pinned dependencies into .venv (first run: about a minute)" >&2
pipi "torch==2.13.0"
pipi -e ".[dev]"
.venv/bin/python -c "import mobile_mllm, torch, executorch, transformers"
echo "$want" > "$stamp"
