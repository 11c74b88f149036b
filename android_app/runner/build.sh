#!/usr/bin/env bash
# Build the native runner: build.sh ABI OUT_DIR, ABI x86_64 | arm64 | android-arm64.
# x86_64 and arm64 (cross, run under qemu: see arm64.sh) are built here; android-arm64 needs $ANDROID_NDK
# and $EXECUTORCH_ANDROID_PREFIX (never run here: no NDK).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 x86_64|arm64|android-arm64 OUT_DIR" >&2
  exit 2
fi
ABI=$1
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in "$REPO/.venv/bin/python" /work/main/.venv/bin/python python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
CXX_BIN=g++ ET="" EXTRA=()  # the x86-64 defaults; arm64 replaces them
case "$ABI" in
  x86_64)
    if [ "$(uname -m)" != x86_64 ]; then
      echo "build.sh: x86_64 build needs an x86-64 host (this is $(uname -m))" >&2; exit 2
    fi
    ;;
  arm64)
    # aarch64 Linux: Debian's cross g++ against the manylinux aarch64 wheel's runtime (arm64.sh fetches
    # and caches it); run the result with `arm64.sh run OUT_DIR/mobile_mllm_runner ...` (qemu).
    "$HERE/arm64.sh" check
    CXX_BIN=aarch64-linux-gnu-g++
    ET=$("$HERE/arm64.sh" executorch)
    EXTRA=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DSTB_INCLUDE_DIR="$("$HERE/arm64.sh" stb)")
    ;;
  android-arm64)
    # Android arm64-v8a with the NDK's clang and bionic. ExecuTorch's libraries come from a SOURCE build
    # of the same ExecuTorch version for arm64-v8a, installed into $EXECUTORCH_ANDROID_PREFIX (static
    # libraries + include/ + lib/cmake/ExecuTorch; android_app/README.md has the exact commands), not
    # from the executorch-android AAR: its jni/arm64-v8a/libexecutorch.so is one JNI library whose C++
    # API is not a published interface, and it carries the llama:: custom ops this runner registers
    # itself. Written, never run: no NDK on the machines this was made on.
    if [ -z "${ANDROID_NDK:-}" ] || [ ! -d "${ANDROID_NDK}" ]; then
      echo "build.sh: android-arm64 needs the Android NDK (set ANDROID_NDK); it is not installed here," \
           "so nothing was built" >&2
      exit 2
    fi
    TOOLCHAIN="$ANDROID_NDK/build/cmake/android.toolchain.cmake"
    [ -f "$TOOLCHAIN" ] || { echo "build.sh: $ANDROID_NDK is not an NDK (no $TOOLCHAIN); nothing was built" >&2; exit 2; }
    ET=${EXECUTORCH_ANDROID_PREFIX:-}
    if [ -z "$ET" ] || [ ! -d "$ET/lib/cmake/ExecuTorch" ]; then
      echo "build.sh: android-arm64 needs ExecuTorch built for arm64-v8a from source: set" \
           "EXECUTORCH_ANDROID_PREFIX to its install prefix (see android_app/README.md); nothing was built" >&2
      exit 2
    fi
    CXX_BIN=""  # the toolchain file picks the NDK's clang++
    EXTRA=(-DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DANDROID_ABI=arm64-v8a -DANDROID_PLATFORM="android-${ANDROID_API:-26}"
           -DANDROID_STL=c++_static -DSTB_INCLUDE_DIR="$("$HERE/arm64.sh" stb)")
    ;;
  *)
    echo "build.sh: unknown ABI '$ABI' (x86_64 | arm64 | android-arm64)" >&2; exit 2 ;;
esac
for tool in cmake $CXX_BIN; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build.sh: $tool not found" >&2; exit 2; }
done
SITE=${EXECUTORCH_SITE:-$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')}
[ -n "$ET" ] || ET="$SITE/executorch"
TI="$SITE/torch/include"
[ -d "$ET/lib" ] && [ -d "$ET/include" ] || { echo "build.sh: no executorch lib/include under $SITE" >&2; exit 2; }
[ -d "$TI/c10" ] || { echo "build.sh: no torch headers at $TI" >&2; exit 2; }
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
mkdir -p "$OUT"
[ -z "$CXX_BIN" ] || EXTRA+=(-DCMAKE_CXX_COMPILER="$CXX_BIN")
cmake -S "$HERE" -B "$OUT" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DEXECUTORCH_ROOT="$ET" -DTORCH_INCLUDE="$TI" "${EXTRA[@]}"
cmake --build "$OUT" -j "${JOBS:-2}"
echo "built $OUT/mobile_mllm_runner"
