#!/usr/bin/env bash
# GPU checks, for a lent GPU machine that has torch but not diffusers/lpips and no network.
# Carry the wheels in .whl/ (ignored by git), pure-Python ones for the machine's Python 3.12:
#   diffusers, filelock, importlib_metadata, lpips, torchmetrics (>= 1.4) and lightning_utilities (its
#   dependency), e.g. `pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl
#   torchmetrics lightning-utilities` where an index is reachable (this machine: /opt/pypi/files/).
# Writes its logs and CSVs to $OUT; the benchmarks' output also to $OUT/vs_diffusers.log and
# $OUT/metrics.log. Run it with timeout_s 600: the SDXL-size build and its 30-step rounds take minutes.
set -uo pipefail
OUT=${OUT:-/tmp/diffbench-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD:/tmp/site
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . || exit 1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, diffusers, transformers, torchmetrics, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, diffusers.__version__, transformers.__version__, 'torchmetrics', torchmetrics.__version__)"

  echo "== device settings checked against what torch sees (cuda:99 refused, cuda:0 taken)"
  python3 -m pytest --diffbench examples/ -q --co -p no:cacheprovider --diffbench-device=cuda:99 2>&1 | tail -2
  python3 -m pytest --diffbench examples/ -q --co -p no:cacheprovider --diffbench-device=cuda:0 2>&1 | tail -1

  echo "== GPU tests"
  python3 -m pytest tests/e2e/test_gpu.py -v -p no:cacheprovider

  echo "== examples on cuda: update, rerun, -n 2"
  B=/tmp/gpu-baselines; D=/tmp/gpu-runs
  python3 -m pytest --diffbench examples/ -q --diffbench-baseline-dir=$B --diffbench-output-dir=$D --diffbench-update
  python3 -m pytest --diffbench examples/ -q --diffbench-baseline-dir=$B --diffbench-output-dir=$D
  cp "$D/runs/$(cat $D/latest)/results.csv" "$OUT/examples-cuda.csv"
  python3 -m pytest --diffbench examples/ -q --diffbench-baseline-dir=$B --diffbench-output-dir=$D -n 2
  cp "$D/runs/$(cat $D/latest)/results.csv" "$OUT/examples-cuda-n2.csv"
  python3 -c "
import pandas as pd
for name in ['examples-cuda', 'examples-cuda-n2']:
    df = pd.read_csv('$OUT/' + name + '.csv')
    print(name, df[['case_id', 'outcome', 'seconds_per_image', 'peak_vram_mb', 'warmup_seconds', 'device_name', 'driver', 'worker']].to_string())
"
  echo "== the CPU-pinned committed baselines compared from the GPU machine's CPU"
  python3 -m pytest --diffbench examples/ -q --diffbench-device=cpu --diffbench-output-dir=$D

  echo "== metrics on the device (SSIM/PSNR in torch against scikit-image)"
  python3 benchmarks/metrics.py --no-cpu-torch 2>&1 | tee "$OUT/metrics.log"

  echo "== plugin vs bare diffusers: cpu-tiny, SD1.5-size 512x512, SDXL-size 1024x1024 (fp16, 30 steps), batch of 4"
  python3 benchmarks/vs_diffusers.py --configs sd15,sdxl,cpu-tiny --cases 8 --rounds 2 --batch 4 2>&1 | tee "$OUT/vs_diffusers.log"
} 2>&1 | tee "$OUT/gpu_check.log"
