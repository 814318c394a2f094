#!/usr/bin/env bash
# GPU checks, for a lent GPU machine that has torch but not diffusers/lpips and no network.
# Carry the wheels in .whl/ (see README, Development). Writes its logs and CSVs to $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/diffbench-gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD:/tmp/site
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . || exit 1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, diffusers, transformers, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, diffusers.__version__, transformers.__version__)"

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

  echo "== case overhead vs bare diffusers call"
  python3 benchmarks/case_overhead.py --device cuda --cases 8 --steps 20
} 2>&1 | tee "$OUT/gpu_check.log"
