#!/usr/bin/env bash
# All the GPU work of the accuracy issue in one call of the lent GPU machine (about 9 minutes):
#
#   bash benchmarks/device_run.sh prepare      # HERE, once: .device/ = the datasets as IDX files
#                                              #   and the wheels the GPU image lacks
#   OUT=... bash benchmarks/device_run.sh      # THERE (carry .device): stage 1 bench_env on CUDA
#                                              #   up to 65,536 envs; stage 2 bench_train with and
#                                              #   without --compile; stage 3 trains every task
#                                              #   for what the time limit leaves, then tests it
#   bash benchmarks/device_run.sh cpu-smoke    # CPU, test-sized: stages 1-3 in seconds (the
#                                              #   test suite runs this so the script cannot rot)
#
# Results go under $OUT (default runs/device): bench_env.txt, bench_train.txt, train.log and
# runs.tgz (metrics, test.json and best.pt of every task). LIMIT_S (default 540) is the whole
# call's budget in seconds; each task gets an equal share of what stages 1-2 left, and is
# stopped by SIGINT, which the trainer turns into a clean stop (continue it with --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-cuda}
PY=${PYTHON:-python3}
OUT=${OUT:-runs/device}
LIMIT_S=${LIMIT_S:-540}
TASKS=${TASKS:-"GlimpseMNIST-v0 GlimpseTranslatedMNIST-v0 GlimpseClutteredMNIST-v0 GlimpseClutteredMNIST100-v0 GlimpseFashionMNIST-v0"}
start=$(date +%s)

if [ "$mode" = prepare ]; then
  mkdir -p .device/data .device/whl
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qx '/.device/' "$exclude" 2>/dev/null || echo '/.device/' >> "$exclude"
  "$PY" - <<'EOF'
import gzip, pathlib
import numpy as np
from ram_env.datasets import load_split
names = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
for dataset in ("mnist", "fashion-mnist"):
    folder = pathlib.Path(".device/data") / dataset
    folder.mkdir(parents=True, exist_ok=True)
    for split, (image_name, label_name) in names.items():
        for name, array in zip((image_name, label_name), load_split(dataset, split)):
            array = array.numpy().astype(np.uint8)
            header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
            (folder / f"{name}.gz").write_bytes(gzip.compress(header + array.tobytes(), mtime=0))
EOF
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    -d .device/whl gymnasium==1.* farama-notifications
  du -sh .device
  exit 0
fi

if [ "$mode" = cpu-smoke ]; then
  device=cpu; sizes="64"; batches="32"; images=64; repeats=1; compile=""; train_batch=32
  single=100; bench_envs=(--env GlimpseMNIST-v0 GlimpseClutteredMNIST100-v0)
  extra=(--train-subset 64 --eval-batch-size 32 --M 2 --core-size 32 --glimpse-features 32)
  TASKS=${TASKS_SMOKE:-GlimpseMNIST-v0}
else
  device=cuda; sizes="1024 16384 65536"; batches="1024 8192"; images=262144; repeats=3
  compile=1; train_batch=1024; extra=(--lr 1e-3 --eval-batch-size 10000)
  single=2000; bench_envs=()
  if [ -d .device/whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .device/whl/*.whl
    export PYTHONPATH=/tmp/site
  fi
  [ -d .device/data ] && export RAM_ENV_DATA=$PWD/.device/data
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT/runs"

# A failing stage is logged and the next one runs: whatever finished still comes back.
echo "== stage 1: bench_env on $device" | tee "$OUT/bench_env.txt"
"$PY" benchmarks/bench_env.py --device "$device" --vector-sizes $sizes --sync-sizes 4 \
  --single-steps "$single" --repeats "$repeats" 2>&1 | tee -a "$OUT/bench_env.txt" \
  || echo "stage 1 failed" | tee -a "$OUT/bench_env.txt"

echo "== stage 2: bench_train on $device" | tee "$OUT/bench_train.txt"
"$PY" benchmarks/bench_train.py --device "$device" --batch-sizes $batches --images "$images" \
  --repeats "$repeats" ${bench_envs[@]+"${bench_envs[@]}"} 2>&1 | tee -a "$OUT/bench_train.txt" \
  || echo "stage 2 failed" | tee -a "$OUT/bench_train.txt"
if [ -n "$compile" ]; then
  "$PY" benchmarks/bench_train.py --device "$device" --batch-sizes $batches \
    --images "$images" --repeats "$repeats" ${bench_envs[@]+"${bench_envs[@]}"} --compile 2>&1 \
    | tee -a "$OUT/bench_train.txt" || echo "stage 2 (compile) failed" | tee -a "$OUT/bench_train.txt"
fi

echo "== stage 3: training every task for the time left" | tee "$OUT/train.log"
read -r -a tasks <<< "$TASKS"
left=${#tasks[@]}
for task in "${tasks[@]}"; do
  remaining=$(( LIMIT_S - ($(date +%s) - start) - 20 * left ))
  share=$(( remaining / left ))
  left=$(( left - 1 ))
  if [ "$share" -lt 10 ] && [ "$mode" != cpu-smoke ]; then
    echo "$task: no time left" | tee -a "$OUT/train.log"; continue
  fi
  [ "$mode" = cpu-smoke ] && share=120
  # The plateau schedule: a run stopped by the time limit is not left mid-cosine.
  run=(--env "$task" --device "$device" --batch-size "$train_batch" --plot-every 0
       --lr-schedule plateau --ckpt-dir "$OUT/runs/$task" "${extra[@]}")
  epochs=$([ "$mode" = cpu-smoke ] && echo 1 || echo 1000)
  # SIGINT ends the run cleanly at the time limit (the last finished epoch is kept); SIGKILL
  # 30 s later if it does not stop.
  timeout -k 30 -s INT "$share" "$PY" train_reinforce.py "${run[@]}" --epochs "$epochs" \
    2>&1 | tr '\r' '\n' | grep --line-buffered -v "img/s\|it/s\]" | tee -a "$OUT/train.log" \
    || true
  if [ -f "$OUT/runs/$task/best.pt" ]; then
    "$PY" train_reinforce.py --test "${run[@]}" 2>&1 | tee -a "$OUT/train.log" \
      || echo "$task: test failed" | tee -a "$OUT/train.log"
  fi
done
tar czf "$OUT/runs.tgz" -C "$OUT" --exclude='last.pt' --exclude='events.out.*' runs
rm -rf "$OUT/runs"
echo "done in $(( $(date +%s) - start )) s; results in $OUT"
