#!/usr/bin/env bash
# One training phase of builtin:synth-small on the device machine (see bench/train_reference.md):
# calibrate the step rate, train for a wall-clock budget with a cosine schedule that ends on time,
# evaluate on the held-out benchmark, and copy the model, logs and scores to $OUT.
#
#   bash bench/train_phase.sh NAME INIT_FROM TRAIN_BUDGET_S [train-reference flags ...]
#   e.g. bash bench/train_phase.sh F builtin:synth-small 420 --seed 11 --questions-per-image 4
#
# Environment: RATE (steps/s; skips calibration), PYTHON (default python3), DEVICE (default cuda), NPROC (training processes,
# one per GPU, started by torchrun: data-parallel, --batch-size is the global batch; default 1), WORKERS (DataLoader workers
# per process, default: cores / NPROC - 1), OUT (default out/phases), EVAL_PER_KIND (40), EVAL_TEXT (60), EVAL_SEED (1000).
set -euo pipefail
name=$1 init=$2 budget=$3
shift 3
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
nproc_train=${NPROC:-1}
workers=${WORKERS:-$(( $(nproc) / nproc_train - 1 ))}
out=${OUT:-out/phases}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$out/$name" out
if [ "$nproc_train" -gt 1 ]; then
    launch=($py -m torch.distributed.run --standalone --nproc-per-node "$nproc_train" -m mobile_mllm.cli)
else
    launch=($py -m mobile_mllm.cli)
fi
train() { "${launch[@]}" train-reference --device "$device" --num-workers "$workers" --init-from "$init" "$@"; }

# 1. calibration: 120 steps, same flags; the rate between steps 40 and 120 (after start-up) turns
#    the time budget into a step count
#    (RATE=steps/s skips it when a previous phase of the same flags measured it)
if [ -n "${RATE:-}" ]; then
    rate=$RATE
else
    rm -rf out/calibrate
    train --steps 120 --warmup-steps 5 --log-every 40 -o out/calibrate "$@" > /dev/null
    rate=$($py -c 'import json,sys; a,b=[json.loads(l) for l in open(sys.argv[1])][-2:]; print((b["step"]-a["step"])/(b["elapsed_s"]-a["elapsed_s"]))' out/calibrate/train_log.jsonl)
fi
steps=$($py -c "print(max(50, int($rate * $budget * 0.97)))")
echo "calibration: $rate steps/s -> $steps steps for $budget s" | tee "$out/$name/phase.txt"

# 2. the phase (the time limit is only a safety net: the schedule is sized to end on time)
rm -rf "out/$name"
train --steps "$steps" --time-limit-s "$((budget + 30))" --log-every 100 -o "out/$name" "$@" | tee -a "$out/$name/phase.txt"

# 3. the model and logs first (so a cut-off evaluation loses nothing), then the held-out benchmark
#    (seed 1000; text set 1001) on this machine's CPUs
#    The device tool brings back only ~8 files per call, so $OUT/NAME holds at most 7: the model's
#    4 files, logs.tar.gz (phase.txt, train_log.jsonl, train_config.json), then bench.json and bench.md.
cp -r "out/$name/model" "$out/$name/"
tar -czf "$out/$name/logs.tar.gz" -C "$out/$name" phase.txt -C "$PWD/out/$name" train_log.jsonl train_config.json
$py bench/eval_reference.py "out/$name/model" --seed "${EVAL_SEED:-1000}" --workers "$(( $(nproc) - 1 ))" --per-kind "${EVAL_PER_KIND:-40}" \
    --text-count "${EVAL_TEXT:-60}" --json-out "$out/$name/bench.json" --md-out "$out/$name/bench.md"
rm -f "$out/$name/phase.txt"  # it is in logs.tar.gz
