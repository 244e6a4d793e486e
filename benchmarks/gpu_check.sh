#!/usr/bin/env bash
# GPU check: the zoo's speed on a GPU, in one command (about 6-8 minutes on a machine with one GPU).
#
#   bash benchmarks/gpu_check.sh [OUTPUT_DIR]    # default: $OUT if set, else ./gpu_check_out
#
# 1. bert_mini fine-tuned from scratch for one epoch on SST-2 (../shared/data/sst2/{train,dev}.tsv,
#    or $ZOO_SHARED_DATA/sst2) through `python -m trainers.run --train_files --eval_files`, with
#    --mixed_precision=mixed_float16 --jit_compile, under --strategy=default;
# 2. the same under --strategy=mirrored over every visible GPU (reusing run 1's vocabulary and token
#    cache, as a resumed run would, so its data phase is short);
# 3. keras-hub's recipe (benchmarks.finetune.build_peer) in the same precision, per step, its epoch
#    extrapolated (python -m benchmarks.gpu_check peers).
# Prints `nvidia-smi -L`, the CPU model and the TensorFlow / Keras versions, each run's output (with
# its "Phases: ..." line), and writes OUTPUT_DIR/gpu_check.json and OUTPUT_DIR/gpu_check.md (a short
# table), beside each step's log. A step that fails or runs past its time limit is reported as such
# and the others go on; the exit code is then 1. With no GPU visible it stops at once, with exit code 1.
set -uo pipefail

cd "$(dirname "$0")/.."
out="${1:-${OUT:-./gpu_check_out}}"
python="${PYTHON:-python}"
data="${ZOO_SHARED_DATA:-../shared/data}/sst2"
# Seconds allowed per step: together under 9 minutes even when every step runs out.
run_limit=240
mirrored_limit=180
peers_limit=90

no_gpu() {
    echo "gpu_check: no GPU visible: $1. This check needs a machine with an NVIDIA GPU (nothing was run)." >&2
    exit 1
}

# Without nvidia-smi there is no GPU to find: fail in milliseconds, before TensorFlow loads.
command -v nvidia-smi >/dev/null 2>&1 || no_gpu "nvidia-smi is not installed"
gpus="$(nvidia-smi -L 2>/dev/null | grep '^GPU ')" || no_gpu "nvidia-smi -L lists none"
# "<GPUs TensorFlow lists> <TensorFlow version> <Keras version>"
tensorflow="$(TF_CPP_MIN_LOG_LEVEL=2 "$python" -c "import tensorflow as tf, keras
print(len(tf.config.list_physical_devices('GPU')), tf.__version__, keras.__version__)" 2>/dev/null | tail -n 1)"
read -r visible tf_version keras_version <<<"$tensorflow"
[[ "${visible:-0}" =~ ^[1-9][0-9]*$ ]] || no_gpu "TensorFlow lists none (tf.config.list_physical_devices('GPU'))"
[[ -f "$data/train.tsv" && -f "$data/dev.tsv" ]] || {
    echo "gpu_check: no SST-2 at $data (train.tsv, dev.tsv); set ZOO_SHARED_DATA" >&2
    exit 1
}

mkdir -p "$out"
work="$(mktemp -d -t zoo-gpu-check-XXXXXX)"  # Checkpoints and SavedModels: too big for OUTPUT_DIR.
trap 'rm -rf "$work"' EXIT

{
    echo "$gpus"
    echo "CPU: $(grep -m 1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
    echo "TensorFlow $tf_version (sees $visible GPU(s)), Keras $keras_version"
} | tee "$out/environment.txt"

zoo_run() {  # zoo_run STRATEGY LIMIT: one epoch, logged to OUTPUT_DIR/zoo_STRATEGY.log
    echo "== zoo: bert_mini, mixed_float16 + XLA, --strategy=$1 (limit $2 s)"
    timeout "$2" "$python" -m trainers.run --model=bert_mini \
        --train_files="$data/train.tsv" --eval_files="$data/dev.tsv" --epochs=1 \
        --mixed_precision=mixed_float16 --jit_compile --strategy="$1" \
        --model_dir="$work/zoo_$1" --export_dir="$work/exports_$1" 2>&1 | tee "$out/zoo_$1.log"
    local status="${PIPESTATUS[0]}"
    if [[ "$status" != 0 ]]; then
        echo "== zoo --strategy=$1 failed (exit $status; 124: past its $2 s limit)" | tee -a "$out/zoo_$1.log"
        failed=1
    fi
}

failed=0

zoo_run default "$run_limit"
mkdir -p "$work/zoo_mirrored"
cp "$work/zoo_default/vocabulary.txt" "$out/vocabulary.txt" 2>/dev/null \
    && cp -r "$work/zoo_default/vocabulary.txt" "$work/zoo_default/tokens" "$work/zoo_mirrored/"
zoo_run mirrored "$mirrored_limit"

echo "== keras-hub's recipe, mixed_float16 (limit $peers_limit s)"
if [[ -f "$out/vocabulary.txt" ]]; then
    timeout "$peers_limit" "$python" -m benchmarks.gpu_check peers "$out" "$data" 2>&1 | tee "$out/keras_hub.log"
    [[ "${PIPESTATUS[0]}" == 0 ]] || failed=1
else
    echo "skipped: the default run learned no vocabulary" | tee "$out/keras_hub.log"
    failed=1
fi

"$python" -m benchmarks.gpu_check report "$out" || failed=1
echo "Wrote $out/gpu_check.json and $out/gpu_check.md"
exit "$failed"
