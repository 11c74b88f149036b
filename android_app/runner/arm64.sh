#!/usr/bin/env bash
# The pieces the arm64 (aarch64 Linux) runner needs on an x86-64 machine, fetched once and cached:
#
#   arm64.sh check             every piece present? (names the Debian package of each missing one; exit 2)
#   arm64.sh executorch        print the unpacked aarch64 executorch package dir (downloads the wheel once)
#   arm64.sh sysroot           print the arm64 sysroot qemu runs the runner against
#   arm64.sh debian-sysroot    make (once) and print a sysroot of Debian's own arm64 packages (below)
#   arm64.sh run BINARY ARGS   run an arm64 binary under qemu-aarch64-static -L SYSROOT -cpu CPU (exit code =
#                              its own)
#
# Cache: ${MOBILE_MLLM_CACHE:-~/.cache/mobile-mllm}/arm64/
#   wheels/executorch-VERSION-*-manylinux_2_28_aarch64.whl   the PyPI wheel, as `pip download` got it
#   executorch-VERSION/executorch/{lib,include,share/cmake}  its torch-free runtime libraries, headers, CMake config
#   include/stb/stb_image.h                                  Debian's libstb-dev header, copied: the cross
#                                                            compiler must not see the host's /usr/include
# The wheel is unpacked, never installed: only lib/ and include/ are taken. Its version follows the
# executorch of $PYTHON (the export side), else EXECUTORCH_VERSION (default 1.5.1).
#
# Sysroot: $MOBILE_MLLM_ARM64_SYSROOT, else /usr/aarch64-linux-gnu, the tree of Debian's arm64 glibc,
# libstdc++ and libgcc_s that g++-aarch64-linux-gnu installs (libc6-arm64-cross, libstdc++6-arm64-cross,
# libgcc-s1-arm64-cross): the same libraries the binary was linked against. Any Debian arm64 root
# (debootstrap --arch=arm64 --foreign, or `dpkg -x` of libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64)
# works as MOBILE_MLLM_ARM64_SYSROOT too; `arm64.sh debian-sysroot` makes one from libc6, libstdc++6 and
# libgcc-s1 for arm64 (apt-get update + download with a private state and cache under $CACHE/apt, so the
# machine's dpkg architectures and apt lists are untouched; then dpkg -x into $CACHE/sysroot-debian).
# No binfmt_misc registration is used or needed.
#
# CPU: $MOBILE_MLLM_QEMU_CPU, default "max,sme=off": every feature qemu 7.2 emulates (dotprod, i8mm, bf16,
# SVE2) except SME, i.e. an Armv9 phone core of the Cortex-A715/X3 kind. SME is off because XNNPACK then
# picks its SME (KleidiAI neonsme) kernels, which hardly any phone has, and under qemu 7.2 those changed the
# built-in w4 model's answer ("purple" -> "but") where every other CPU model agrees with the host
# (bench/RESULTS.md). "cortex-a72" (no dotprod) makes XNNPACK use the same qd8 kernels as x86-64.
#
# Debian packages: g++-aarch64-linux-gnu, qemu-user-static, libstb-dev, cmake (and ninja-build, optional).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${MOBILE_MLLM_CACHE:-$HOME/.cache/mobile-mllm}/arm64
SYSROOT=${MOBILE_MLLM_ARM64_SYSROOT:-/usr/aarch64-linux-gnu}
QEMU=${QEMU_AARCH64:-qemu-aarch64-static}
QEMU_CPU_MODEL=${MOBILE_MLLM_QEMU_CPU:-max,sme=off}

die() { echo "arm64.sh: $*" >&2; exit 2; }

python_bin() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  for cand in "$REPO/.venv/bin/python" /work/main/.venv/bin/python python3; do
    if command -v "$cand" >/dev/null 2>&1; then echo "$cand"; return; fi
  done
  die "no python found (set PYTHON)"
}

et_version() {
  if [ -n "${EXECUTORCH_VERSION:-}" ]; then echo "$EXECUTORCH_VERSION"; return; fi
  "$(python_bin)" -c 'import importlib.metadata as m; print(m.version("executorch"))' 2>/dev/null || echo 1.5.1
}

# The unpacked package dir (…/executorch); downloads and unpacks the wheel on first use.
executorch_dir() {
  local ver py dest whl tmp
  ver=$(et_version)
  dest="$CACHE/executorch-$ver"
  if [ -f "$dest/.complete" ]; then echo "$dest/executorch"; return; fi
  py=$(python_bin)
  mkdir -p "$CACHE/wheels"
  whl=$(ls "$CACHE/wheels"/executorch-"$ver"-*manylinux*aarch64.whl 2>/dev/null | head -n1 || true)
  if [ -z "$whl" ]; then
    echo "arm64.sh: downloading executorch==$ver (manylinux aarch64) from PyPI into $CACHE/wheels" >&2
    local pyver
    pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    "$py" -m pip download -q "executorch==$ver" --no-deps --only-binary=:all: \
      --platform manylinux_2_28_aarch64 --python-version "$pyver" -d "$CACHE/wheels" 2>&1 \
      | { grep -v "is ignored" || true; } >&2
    whl=$(ls "$CACHE/wheels"/executorch-"$ver"-*manylinux*aarch64.whl 2>/dev/null | head -n1 || true)
    [ -n "$whl" ] || die "pip could not download executorch==$ver for manylinux_2_28_aarch64 (PyPI reachable?)"
  fi
  tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
  "$py" - "$whl" "$tmp" <<'EOF'
import sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith(("executorch/lib/", "executorch/include/", "executorch/share/cmake/"))]
    if not any(n.startswith("executorch/lib/libexecutorch") for n in names):
        sys.exit(f"{whl} has no executorch/lib/libexecutorch*: not a wheel with the torch-free runtime")
    z.extractall(dest, names)
EOF
  rm -rf "$dest"
  mv "$tmp" "$dest"
  touch "$dest/.complete"
  echo "$dest/executorch"
}

# Debian's stb_image.h in a directory of its own (for -DSTB_INCLUDE_DIR).
stb_dir() {
  [ -f /usr/include/stb/stb_image.h ] || die "stb_image.h missing: apt-get install libstb-dev"
  mkdir -p "$CACHE/include/stb"
  cmp -s /usr/include/stb/stb_image.h "$CACHE/include/stb/stb_image.h" \
    || cp /usr/include/stb/stb_image.h "$CACHE/include/stb/stb_image.h"
  echo "$CACHE/include"
}

check_sysroot() {  # the cross tree keeps its libraries in lib/, a Debian root in (usr/)lib/aarch64-linux-gnu
  local f d found
  [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || die "arm64 sysroot $SYSROOT lacks lib/ld-linux-aarch64.so.1:" \
    "apt-get install g++-aarch64-linux-gnu (its libc6-arm64-cross, libstdc++6-arm64-cross, libgcc-s1-arm64-cross)," \
    "or point MOBILE_MLLM_ARM64_SYSROOT at a Debian arm64 root (arm64.sh debian-sysroot makes one)"
  for f in libc.so.6 libm.so.6 libstdc++.so.6 libgcc_s.so.1; do
    found=""
    for d in lib lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu; do [ -e "$SYSROOT/$d/$f" ] && found=1; done
    [ -n "$found" ] || die "arm64 sysroot $SYSROOT lacks $f (see arm64.sh's header for the packages)"
  done
}

debian_sysroot() {
  local dest="$CACHE/sysroot-debian" apt="$CACHE/apt" deb
  if [ -f "$dest/.complete" ]; then echo "$dest"; return; fi
  command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 || die "debian-sysroot needs apt-get and dpkg"
  mkdir -p "$apt/state/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$apt/preferences.d"
  touch "$apt/state/status"
  local opts=(-q -o APT::Architecture=arm64 -o "APT::Architectures::=arm64" -o "Dir::State=$apt/state"
              -o "Dir::State::status=$apt/state/status" -o "Dir::Cache=$apt/cache"
              -o "Dir::Etc::Preferences=$apt/preferences" -o "Dir::Etc::PreferencesParts=$apt/preferences.d")
  echo "arm64.sh: fetching Debian's arm64 package lists and libc6, libstdc++6, libgcc-s1 into $apt" >&2
  apt-get "${opts[@]}" update >&2 || die "apt-get update (arm64, private state in $apt) failed"
  (cd "$apt/debs" && apt-get "${opts[@]}" download libc6 libstdc++6 libgcc-s1 >&2) \
    || die "apt-get download libc6 libstdc++6 libgcc-s1 (arm64) failed"
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  for deb in "$apt"/debs/*_arm64.deb; do dpkg -x "$deb" "$dest.tmp"; done
  rm -rf "$dest" && mv "$dest.tmp" "$dest" && touch "$dest/.complete"
  echo "$dest"
}

check_tools() {
  local missing=()
  command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || missing+=(g++-aarch64-linux-gnu)
  command -v "$QEMU" >/dev/null 2>&1 || missing+=(qemu-user-static)
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  [ -f /usr/include/stb/stb_image.h ] || missing+=(libstb-dev)
  [ ${#missing[@]} -eq 0 ] || die "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  check) check_tools; check_sysroot; echo "arm64.sh: toolchain, qemu and sysroot $SYSROOT present" >&2 ;;
  executorch) executorch_dir ;;
  stb) stb_dir ;;
  sysroot) check_sysroot; echo "$SYSROOT" ;;
  debian-sysroot) debian_sysroot ;;
  run)
    [ $# -ge 1 ] || die "usage: arm64.sh run BINARY [ARGS...]"
    command -v "$QEMU" >/dev/null 2>&1 || die "$QEMU not found: apt-get install qemu-user-static"
    check_sysroot
    exec "$QEMU" -L "$SYSROOT" -cpu "$QEMU_CPU_MODEL" "$@" ;;
  *) die "usage: arm64.sh check | executorch | stb | sysroot | debian-sysroot | run BINARY [ARGS...]" ;;
esac
