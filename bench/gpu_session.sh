#!/usr/bin/env bash
# One GPU session on a lent machine (the workplace's `device` tool runs this from the repository root with the
# darknet submodule, .device/models (the test weights) and .whl (cffi wheels) carried, both made by
# bench/prepare_gpu_carry.sh; $OUT comes back).
#   bench/gpu_session.sh build test bench      # any of: build test bench heavy video memory train cuda-wheels
# Builds pydarknet with CUDA + cuDNN (from the nvidia-cudnn wheel) + FP16 for the GPU present, prints the
# doctor's report, runs the test suite, and runs the benchmarks, logging everything under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYDARKNET_TEST_MODELS=$PWD/.device/models BENCH_OUT=$OUT
steps=" $* "
log() { echo "=== $* ($(date +%T))"; }

if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
if [[ $steps == *" build "* ]]; then
  log build
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader
  commit=$(cat .device/darknet_commit 2>/dev/null || echo unknown)
  time python3 -m pip install --no-build-isolation --no-deps -q . \
      -C cmake.define.PYDARKNET_CUDA=ON -C cmake.define.PYDARKNET_CUDNN=ON \
      -C cmake.define.PYDARKNET_DARKNET_COMMIT="$commit" -C build.verbose=false 2>&1 | tail -30 | tee "$OUT/build.log"
  # a failed build must not let the tests and benchmarks run against whatever was installed before
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "=== build FAILED: see build.log"; exit 1; }
  python3 -m pydarknet doctor | tee "$OUT/doctor.txt"
fi
if [[ $steps == *" test "* ]]; then
  log test
  python3 -m pytest ${TESTS:-tests} -q -p no:cacheprovider --durations=10 2>&1 | tail -40 | tee "$OUT/tests.txt"
fi
if [[ $steps == *" bench "* ]]; then
  log bench
  python3 bench/bench_detect.py --rounds 5 --seconds 0.5 2>&1 | grep -v "^ \|^Loaded\|^Done\|^net\|^Try\|^mini_batch\|^Total\|^Allocate\|^ *[0-9]* \(conv\|max\|yolo\|route\|upsample\)" | tail -25
fi
if [[ $steps == *" heavy "* ]]; then
  log heavy
  python3 bench/bench_detect.py --heavy darknet-init --batches 1,8 --rounds 4 --seconds 0.5 2>&1 | tail -15
  python3 bench/bench_detect.py --heavy unit-variance --batches 1 --rounds 2 --seconds 1 2>&1 | tail -13
fi
if [[ $steps == *" video "* ]]; then
  log video
  python3 bench/bench_video.py --seconds 10 --batch-size 8 2>&1 | tail -12
fi
if [[ $steps == *" memory "* ]]; then
  log memory
  python3 bench/bench_memory.py --detects 10000 --every 1000 2>&1 | tail -18
fi
if [[ $steps == *" train "* ]]; then
  log train
  python3 bench/bench_train.py --template yolov4-tiny --size 416 --width 1 --iterations 1000 --images 400 \
      --gpus 0 --rounds 2 2>&1 | tail -14
fi
if [[ $steps == *" cuda-wheels "* ]]; then
  # the library built from the nvidia-* wheels on the CPU machine (docs/gpu.md), run on this GPU against the CUDA
  # runtime, cuBLAS, cuRAND and cuDNN found here (pydarknet/_cuda_libs.py says where, the doctor prints it)
  log cuda-wheels
  lib=$PWD/.device/cuda-wheels/libpydarknet.so
  if [[ ! -f $lib ]]; then
    echo "=== no $lib: run bench/prepare_gpu_carry.sh --cuda-wheels and carry .device"
  else
    PYDARKNET_LIBRARY=$lib python3 -m pydarknet doctor | tee "$OUT/doctor-cuda-wheels.txt"
    PYDARKNET_LIBRARY=$lib PYDARKNET_CUDA_LIBRARY=$lib python3 -m pytest tests/test_cuda_wheels.py \
        tests/test_cuda_libs.py tests/test_detector.py -q -p no:cacheprovider -rs 2>&1 | tail -30 \
        | tee "$OUT/tests-cuda-wheels.txt"
  fi
fi
log done
