#!/usr/bin/env bash
# GPU checks, for a lent GPU machine that has torch but not diffusers/lpips and no network.
#
# Usage: bash benchmarks/gpu_check.sh [correctness|sizes|all]   (default: all)
#   correctness  the `gpu` tests (CUDA timing, peak VRAM, NVML, LPIPS and metrics on CUDA, xdist on one
#                GPU, a batch against its unbatched twin), device settings, the examples on CUDA
#                (update, rerun, -n 2), the CPU-pinned committed baselines from this machine's CPU,
#                the metrics benchmark and the SD1.5-size plugin-vs-diffusers benchmark: about 5 minutes
#   sizes        the SDXL-size and built-in-model plugin-vs-diffusers benchmark: about 4 minutes
# Each step has a time limit of its own, so one that hangs leaves the rest their time.
#
# Carry the wheels in .whl/ (ignored by git), pure-Python ones for the machine's Python 3.12 that its
# image lacks: diffusers, lpips, importlib_metadata, e.g. `pip download --no-deps --only-binary=:all:
# --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 -d .whl diffusers==0.42.1
# lpips==0.1.4 importlib_metadata` (torchmetrics, filelock and matplotlib are in the image).
# Writes its log and CSVs to $OUT (gpu_check.log, examples-cuda*.csv, metrics.log, vs_diffusers*.log).
set -uo pipefail
STAGE=${1:-all}
case "$STAGE" in correctness|sizes|all) ;; *) echo "usage: gpu_check.sh [correctness|sizes|all]" >&2; exit 2 ;; esac
OUT=${OUT:-/tmp/diffbench-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD:/tmp/site
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }

step() {  # step SECONDS TITLE COMMAND...: one check, stopped after SECONDS
  local seconds=$1 title=$2
  shift 2
  echo "== $title"
  local start=$SECONDS
  timeout "$seconds" "$@"
  local status=$?
  local note=""
  [ "$status" = 124 ] && note=" (stopped at its time limit)"
  echo "-- exit $status after $((SECONDS - start)) s$note"
}

correctness() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, diffusers, transformers, torchmetrics, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, diffusers.__version__, transformers.__version__, 'torchmetrics', torchmetrics.__version__)"

  step 60 "device settings checked against what torch sees (cuda:99 refused, cuda:0 taken)" bash -c 'set -o pipefail; 
    python3 -m pytest --diffbench examples/ -q --co -p no:cacheprovider --diffbench-device=cuda:99 2>&1 | tail -2
    python3 -m pytest --diffbench examples/ -q --co -p no:cacheprovider --diffbench-device=cuda:0 2>&1 | tail -1'

  step 200 "gpu tests: CUDA timing, peak VRAM, NVML, LPIPS and metrics on CUDA, xdist on one GPU, a batch" \
    python3 -m pytest -m gpu tests/e2e/test_gpu.py tests/unit/judge/test_metrics_on_device.py -v -rA -n 4 -p no:cacheprovider

  B=/tmp/gpu-baselines D=/tmp/gpu-runs
  export B D OUT
  step 120 "examples on cuda: update, rerun, -n 2" bash -c 'set -o pipefail; 
    python3 -m pytest --diffbench examples/ -q --diffbench-baseline-dir=$B --diffbench-output-dir=$D --diffbench-update=all
    python3 -m pytest --diffbench examples/ -q --diffbench-baseline-dir=$B --diffbench-output-dir=$D
    cp "$D/runs/$(cat $D/latest)/results.csv" "$OUT/examples-cuda.csv"
    python3 -m pytest --diffbench examples/ -q --diffbench-baseline-dir=$B --diffbench-output-dir=$D -n 2
    cp "$D/runs/$(cat $D/latest)/results.csv" "$OUT/examples-cuda-n2.csv"
    python3 -c "
import pandas as pd
for name in [\"examples-cuda\", \"examples-cuda-n2\"]:
    df = pd.read_csv(\"$OUT/\" + name + \".csv\")
    print(name, df[[\"case_id\", \"outcome\", \"seconds_per_image\", \"peak_vram_mb\", \"warmup_seconds\", \"device_name\", \"driver\", \"worker\"]].to_string())
"'
  step 90 "the CPU-pinned committed baselines compared from the GPU machine's CPU" \
    python3 -m pytest --diffbench examples/ -q --diffbench-device=cpu --diffbench-output-dir=/tmp/gpu-runs-cpu

  step 90 "metrics on the device (SSIM/PSNR in torch against scikit-image)" \
    bash -c 'set -o pipefail; python3 benchmarks/metrics.py --no-cpu-torch 2>&1 | tee "$OUT/metrics.log"'

  step 200 "plugin vs bare diffusers: SD1.5-size 512x512, float16, 30 steps, batch of 4" \
    bash -c 'set -o pipefail; python3 benchmarks/vs_diffusers.py --configs sd15 --cases 8 --rounds 2 --batch 4 2>&1 | tee "$OUT/vs_diffusers-sd15.log"'
}

sizes() {
  step 300 "plugin vs bare diffusers: SDXL-size 1024x1024, float16, 30 steps, batch of 4; built-in model on the CPU" \
    bash -c 'set -o pipefail; python3 benchmarks/vs_diffusers.py --configs sdxl,cpu-tiny --cases 8 --rounds 2 --batch 4 2>&1 | tee "$OUT/vs_diffusers-sdxl.log"'
}

{
  case "$STAGE" in
    correctness) correctness ;;
    sizes) sizes ;;
    all) correctness; sizes ;;
  esac
} 2>&1 | tee "$OUT/gpu_check.log"
