#!/usr/bin/env bash
# Prepare the ignored folders that bench/gpu_session.sh expects on a lent GPU machine (which has no internet and
# does not see ../shared): .device/models (the test weights), .device/darknet_commit, and .whl (pure-Python
# wheels of cffi's dependencies for the device's Python, default 3.12). Then carry darknet, .device and .whl.
#   bench/prepare_gpu_carry.sh [python-version]
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-3.12}
models=${PYDARKNET_TEST_MODELS:-../shared/models}
mkdir -p .device/models .whl
cp "$models"/yolov3-tiny.cfg "$models"/yolov3-tiny.weights "$models"/coco.names .device/models/
git -C darknet rev-parse HEAD > .device/darknet_commit
python3 -m pip download -q --only-binary=:all: --python-version "$py" --platform manylinux2014_x86_64 \
    --implementation cp -d .whl cffi pycparser
ls -la .device/models .whl
