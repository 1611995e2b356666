#!/usr/bin/env bash
# Prepare the ignored folders that bench/gpu_session.sh expects on a lent GPU machine (which has no internet and
# does not see ../shared): .device/models (the test weights), .device/darknet_commit, and .whl (pure-Python
# wheels of cffi's dependencies for the device's Python, default 3.12). Then carry darknet, .device and .whl.
#   bench/prepare_gpu_carry.sh [python-version] [--cuda-wheels]
# --cuda-wheels: also .device/cuda-wheels/, the CUDA library built here from the nvidia-* wheels
# (build/cuda-wheels/libpydarknet.so, docs/gpu.md) for bench/gpu_session.sh's cuda-wheels step.  The wheels
# themselves (1.1-1.2 GB) cannot go: the device has no network and a carry holds 64 MiB in all.
set -euo pipefail
cd "$(dirname "$0")/.."
py=3.12
cuda_wheels=0
for arg in "$@"; do
  case $arg in
    --cuda-wheels) cuda_wheels=1 ;;
    *) py=$arg ;;
  esac
done
models=${PYDARKNET_TEST_MODELS:-../shared/models}
mkdir -p .device/models .whl
cp "$models"/yolov3-tiny.cfg "$models"/yolov3-tiny.weights "$models"/coco.names .device/models/
git -C darknet rev-parse HEAD > .device/darknet_commit
python3 -m pip download -q --only-binary=:all: --python-version "$py" --platform manylinux2014_x86_64 \
    --implementation cp -d .whl cffi pycparser
if [[ $cuda_wheels == 1 ]]; then
  lib=${PYDARKNET_CUDA_LIBRARY:-build/cuda-wheels/libpydarknet.so}
  [[ -f $lib ]] || { echo "no $lib: build it first (docs/gpu.md)"; exit 1; }
  mkdir -p .device/cuda-wheels
  cp "$lib" src/pdn_api.h .device/cuda-wheels/
fi
ls -la .device/models .whl $( [[ $cuda_wheels == 1 ]] && echo .device/cuda-wheels )
du -sh darknet .device .whl | sort -h   # the carry limit is 64 MiB in all
