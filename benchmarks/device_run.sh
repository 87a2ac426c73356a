#!/usr/bin/env bash
# All the GPU work of the accuracy issue in one call of the lent GPU machine (about 9 minutes):
#
#   bash benchmarks/device_run.sh prepare      # HERE, once: .device/ = the datasets as IDX files
#                                              #   and the wheels the GPU image lacks
#   OUT=... bash benchmarks/device_run.sh      # THERE (carry .device): stage 1 bench_env on CUDA
#                                              #   up to 65,536 envs; stage 2 bench_train with and
#                                              #   without --compile; stage 3 trains every task
#                                              #   for what the time limit leaves, then tests it
#   OUT=... bash benchmarks/device_run.sh resume
#                                              # THERE (carry .device): stage 3 alone, each task
#                                              #   continued (--resume) from the run folder an
#                                              #   earlier call returned, unpacked here first:
#                                              #   tar xzf runs.tgz -C .device; tar xzf last.tgz
#                                              #   -C .device (.device/runs/<task>/); drop its
#                                              #   best.pt files if the call would pass 64 MiB
#   OUT=... bash benchmarks/device_run.sh warm # THERE (carry .device): stage 3 alone, each task
#                                              #   a new run from $RUNS/<task>/best.pt's weights
#                                              #   (--init-from, lr WARM_LR, default 3e-4): a
#                                              #   second learning-rate cycle for runs whose
#                                              #   schedule has ended (TASKS picks the tasks)
#   bash benchmarks/device_run.sh cpu-smoke    # CPU, test-sized: stages 1-3 in seconds (the
#                                              #   test suite runs this so the script cannot rot)
#   SMOKE=1 bash benchmarks/device_run.sh resume   # the same for the resume and warm modes
#                                              #   (the tests)
#
# Results go under $OUT (default runs/device): bench_env.txt, bench_train.txt, train.log,
# runs.tgz (metrics, logs, test.json and best.pt of every task) and last.tgz (every last.pt, to
# resume; apart because the files that come back are at most 16 MB each). LIMIT_S (default 540)
# is the whole call's budget in seconds; the tasks train side by side (one process each) for what stages 1-2
# left, and are stopped by SIGINT, which the trainer turns into a clean stop (continue one with
# --resume); the per-task logs are in runs.tgz and appended to train.log.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-cuda}
case "$mode" in
  prepare | cuda | resume | warm | cpu-smoke) ;;
  *) echo "usage: $0 [prepare | cuda | resume | warm | cpu-smoke] (got '$mode')" >&2; exit 2 ;;
esac
smoke=${SMOKE:-$([ "$mode" = cpu-smoke ] && echo 1 || echo 0)}
RUNS=${RUNS:-.device/runs}  # where the resume and warm modes find the runs to continue
WARM_LR=${WARM_LR:-3e-4}
PY=${PYTHON:-python3}
OUT=${OUT:-runs/device}
LIMIT_S=${LIMIT_S:-540}
TASKS=${TASKS:-"GlimpseMNIST-v0 GlimpseTranslatedMNIST-v0 GlimpseClutteredMNIST-v0 GlimpseClutteredMNIST100-v0 GlimpseFashionMNIST-v0"}
start=$(date +%s)
# $OUT receives this call's results and its runs/ is removed once packed: never an OUT that
# holds an earlier call's results or anything else of that name (nothing is overwritten).
if [ "$mode" != prepare ]; then
  for name in runs runs.tgz last.tgz train.log bench_env.txt bench_train.txt; do
    if [ -e "$OUT/$name" ]; then
      echo "OUT=$OUT already holds $name (an earlier call's results?): give an empty or new OUT" >&2
      exit 2
    fi
  done
fi

if [ "$mode" = prepare ]; then
  mkdir -p .device/data .device/whl
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
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
    -d .device/whl $("$PY" -c '
from importlib.metadata import version  # what the trainer imports and the GPU image lacks
print(*(f"{name}=={version(name)}" for name in (
    "gymnasium", "farama-notifications", "tyro", "docstring-parser", "typeguard")))')
  du -sh .device
  exit 0
fi

if [ "$smoke" = 1 ]; then
  device=cpu; sizes="64"; batches="32"; images=64; repeats=1; train_batch=32
  single=100; bench_envs=(--env GlimpseMNIST-v0 GlimpseClutteredMNIST100-v0)
  compile_batches="32"; compile_envs=(--env GlimpseMNIST-v0); stage1_s=120; stage2_s=120
  extra=(--train-subset 64 --eval-batch-size 32 --M 2 --core-size 32 --glimpse-features 32
         --compile off); lr=3e-3
  TASKS=${TASKS_SMOKE:-GlimpseMNIST-v0}
else
  # Sized for one call: stage 1 at most 75 s, stage 2 at most 2 x 100 s (the compiled pass on
  # two tasks at batch 1024: compiling costs tens of seconds each), stage 3 the rest. Training
  # runs eager (--compile off): five runs compiling side by side, for the train and the eval
  # batch shapes, would spend a large part of a few minutes compiling.
  device=cuda; sizes="1024 16384 65536"; batches="1024 8192"; images=65536; repeats=2
  train_batch=1024; extra=(--eval-batch-size 10000 --threads 2 --compile off); lr=1e-3
  single=2000; bench_envs=(); stage1_s=75; stage2_s=100; compile_batches="1024"
  compile_envs=(--env GlimpseTranslatedMNIST-v0 GlimpseClutteredMNIST100-v0)
  if [ -d .device/whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .device/whl/*.whl
    export PYTHONPATH=/tmp/site
  fi
  [ -d .device/data ] && export RAM_ENV_DATA=$PWD/.device/data
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT/runs"
"$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
  torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA")' | tee "$OUT/train.log"

# A failing or overrunning stage is logged and the next one runs: whatever finished comes back.
# stage FILE SECONDS NAME COMMAND...: run COMMAND under a time limit, its output added to FILE.
stage() {
  local file=$1 limit=$2 name=$3
  shift 3
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$file" \
    || echo "$name failed or ran past $limit s" | tee -a "$file"
}
if [ "$mode" = cuda ] || [ "$mode" = cpu-smoke ]; then  # resume and warm train only
  echo "== stage 1: bench_env on $device" | tee "$OUT/bench_env.txt"
  stage "$OUT/bench_env.txt" "$stage1_s" "stage 1" "$PY" benchmarks/bench_env.py \
    --device "$device" --vector-sizes $sizes --sync-sizes 4 --single-steps "$single" \
    --repeats "$repeats"
  echo "== stage 2: bench_train on $device" | tee "$OUT/bench_train.txt"
  bench_train=("$PY" benchmarks/bench_train.py --device "$device" --images "$images"
               --repeats "$repeats")
  stage "$OUT/bench_train.txt" "$stage2_s" "stage 2" "${bench_train[@]}" \
    --batch-sizes $batches ${bench_envs[@]+"${bench_envs[@]}"}
  echo "-- with --compile" | tee -a "$OUT/bench_train.txt"
  stage "$OUT/bench_train.txt" "$stage2_s" "stage 2 (compile)" "${bench_train[@]}" \
    --batch-sizes $compile_batches "${compile_envs[@]}" --compile
fi

# Stage 3: every task at once, one process each. A RAM step is a few hundred small kernels, so
# one process leaves the GPU mostly idle: side by side, each run gets nearly the whole time.
read -r -a tasks <<< "$TASKS"
test_s=60
share=$(( LIMIT_S - ($(date +%s) - start) - test_s - 15 ))
[ "$smoke" = 1 ] && share=120
if [ "$share" -ge 30 ]; then
  echo "== stage 3: ${#tasks[@]} tasks side by side for ${share} s each, then their tests" \
    | tee -a "$OUT/train.log"
  for task in "${tasks[@]}"; do
    # (--test and --resume take the learning rate and the schedule from the saved run)
    run=(--env "$task" --device "$device" --batch-size "$train_batch" --plot-every 0
         --ckpt-dir "$OUT/runs/$task" "${extra[@]}")
    epochs=1000  # the time limit stops it; test-sized: 1 epoch, one more on resume
    [ "$smoke" = 1 ] && epochs=$([ "$mode" = resume ] && echo 2 || echo 1)
    # A new run: the plateau schedule (a run stopped by the time limit is not left
    # mid-cosine); the warm mode starts it from the weights of an earlier run's best.pt.
    start_lr=$lr start_from=()
    if [ "$mode" = warm ]; then
      if [ ! -f "$RUNS/$task/best.pt" ]; then
        echo "$task: no best.pt in $RUNS/$task to start from" | tee -a "$OUT/train.log"
        continue
      fi
      start_lr=$WARM_LR start_from=(--init-from "$RUNS/$task/best.pt")
    fi
    train=("${run[@]}" --epochs "$epochs" --lr "$start_lr" --lr-schedule plateau
           ${start_from[@]+"${start_from[@]}"})
    if [ "$mode" = resume ]; then
      # A run continues from its last.pt, or from its best.pt where only that came along (then
      # the epochs after the best are lost); a resumed run writes a best.pt only when it
      # improves on it, so best.pt may be left behind to keep the call small.
      if [ -f "$RUNS/$task/last.pt" ] || [ -f "$RUNS/$task/best.pt" ]; then
        mkdir -p "$OUT/runs/$task"
        find "$RUNS/$task" -maxdepth 1 -type f \( -name '*.pt' -o -name 'metrics.*' \
          -o -name train.log \) -exec cp {} "$OUT/runs/$task/" \;
        [ -f "$OUT/runs/$task/last.pt" ] || cp "$OUT/runs/$task/best.pt" "$OUT/runs/$task/last.pt"
        train=("${run[@]}" --epochs "$epochs" --resume)
      else
        echo "$task: nothing to resume in $RUNS/$task" | tee -a "$OUT/train.log"
        continue
      fi
    fi
    mkdir -p "$OUT/runs/$task"
    log=$OUT/runs/$task/this_call.log
    # SIGINT ends the run cleanly at the time limit (the last finished epoch is kept, continue
    # it with --resume), SIGKILL 15 s later if it does not stop.
    ( timeout -k 15 -s INT "$share" "$PY" train_reinforce.py "${train[@]}" \
        2>&1 | tr '\r' '\n' | grep --line-buffered -v "img/s\|it/s\]" > "$log" || true
      # A run that finished its epochs tested itself; one stopped at the limit is tested here.
      if [ -f "$OUT/runs/$task/best.pt" ] && [ ! -f "$OUT/runs/$task/test.json" ]; then
        timeout -k 10 "$test_s" "$PY" train_reinforce.py --test "${run[@]}" >> "$log" 2>&1 \
          || echo "$task: test failed" >> "$log"
      fi
      cat "$log" >> "$OUT/runs/$task/train.log" ) &
  done
  wait
  for task in "${tasks[@]}"; do
    [ -f "$OUT/runs/$task/this_call.log" ] || continue
    { echo "-- $task"; cat "$OUT/runs/$task/this_call.log"; } >> "$OUT/train.log"
    rm "$OUT/runs/$task/this_call.log"
  done
else
  echo "== stage 3: no time left for training" | tee -a "$OUT/train.log"
fi
grep -h "^-- \|best validation\|test error\|M=\|mean policy" "$OUT/train.log" || true
tar czf "$OUT/runs.tgz" -C "$OUT" --exclude='last.pt' --exclude='events.out.*' runs
(cd "$OUT" && find runs -name last.pt -print0 | tar czf last.tgz --null -T -)
rm -rf "$OUT/runs"
echo "done in $(( $(date +%s) - start )) s; results in $OUT"
