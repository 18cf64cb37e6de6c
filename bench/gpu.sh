#!/usr/bin/env bash
# Every CUDA path of the project in one run (meant to take under 8 minutes on one GPU), offline.
#
#   bash bench/gpu.sh [--device cuda|cpu] [--out DIR]
#
# Steps (each prints its figures as `<step>.<name>: <value>` lines, then `<step>.status: ok|failed <rc>` and
# `<step>.wall_s: <seconds>`; its full output goes to DIR/<step>.log):
#   tiny_fit       python run.py fit  --config configs/gpt2/tiny_monolingual.yaml --config configs/gpt2/tiny_bilingual.yaml
#                  on accelerator=gpu, bf16-mixed
#   tiny_test      python run.py test of that checkpoint (its test-time sweep), same settings
#   ddp_1gpu       the same test with --trainer.strategy=ddp --trainer.devices=1; equal to tiny_test's CSV?
#   sweep_overhead bench/sweep_overhead.py --device cuda
#   sweep_memory   bench/sweep_memory.py --device cuda
#   stacked_trials bench/stacked_trials.py --device cuda
#   subsampled     bench/subsampled_eval.py --device cuda --init-from <tiny_fit's checkpoint>
#   gpt2_small     a GPT-2-small-shaped model (124M, random weights) swept on 8 blocks of 1024 random tokens
#
# Nothing comes from the network: the corpus is generated (datamodules.sample_corpus), the tokenizer is
# trained on it, W&B is off, the Hugging Face hub offline. Without CUDA it stops at once with one line and
# exit status 2. `--device cpu` is a dry run of the same steps on the CPU with small sizes (checks that every
# step works; its timings mean nothing). The exit status is 1 when a step failed.
set -u
device=cuda
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "error: bench/gpu.sh: unknown argument $1 (use --device cuda|cpu, --out DIR)" >&2; exit 2 ;;
    esac
done
case "$device" in cuda|cpu) ;; *) echo "error: bench/gpu.sh: --device=$device: use cuda or cpu" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD WANDB_MODE=offline WANDB_DISABLED=true HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PIP_NO_INDEX=1
if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "error: bench/gpu.sh: $PY cannot import torch (set PYTHON=/path/to/the/project/venv/bin/python)" >&2
    exit 2
fi
if [ "$device" = cuda ] && ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    echo "error: bench/gpu.sh: no CUDA device (torch.cuda.is_available() is False); --device cpu is a CPU dry run" >&2
    exit 2
fi

work=$(mktemp -d)
out=${out:-$work/logs}
mkdir -p "$out"
failures=0
start_all=$(date +%s)

if [ "$device" = cuda ]; then
    accel=(--trainer.accelerator=gpu --trainer.devices=1 --trainer.precision=bf16-mixed)
    fit_steps=300; bench_repeats=2; stacked_args=(); subsampled_args=(--blocks 1024)
    small_shape="8 1024"; overhead_args=(--repeats 2); slack=1
else
    accel=(--trainer.accelerator=cpu --trainer.devices=1 --trainer.precision=bf16-mixed)
    fit_steps=20; bench_repeats=1; stacked_args=(--copies 8 --blocks 16); subsampled_args=(--blocks 128 --no-adaptive-full)
    small_shape="2 64"; overhead_args=(--repeats 1 --only gpt2 scaling); slack=4  # a CPU is slower
fi
common=(--config configs/gpt2/tiny_monolingual.yaml --config configs/gpt2/tiny_bilingual.yaml --trainer.logger=false --trainer.enable_progress_bar=false "${accel[@]}")

# run STEP LIMIT_S COMMAND...: (LIMIT_S × slack on the CPU) the command's `name: value` lines prefixed with STEP, then its status and wall time
run() {
    local step=$1 limit=$2; shift 2
    local begin rc
    begin=$(date +%s)
    timeout $((limit * slack)) "$@" > "$out/$step.log" 2>&1
    rc=$?
    grep -E '^[A-Za-z0-9_]+: ' "$out/$step.log" | sed "s/^/$step./"
    if [ $rc -eq 0 ]; then echo "$step.status: ok"; else echo "$step.status: failed $rc (log: $out/$step.log)"; failures=$((failures + 1)); fi
    echo "$step.wall_s: $(( $(date +%s) - begin ))"
}

csv_figures() {  # the test sweep CSV of a run directory: rows, and the clean perplexity
    "$PY" - "$1" <<'EOF'
import sys
from pathlib import Path
from cognitive_reserve import read_sweep_csv
(path,) = sorted(Path(sys.argv[1], "robustness").glob("sweep_test_epoch*[0-9].csv"))
rows = read_sweep_csv(path)
print(f"sweep_rows: {len(rows)}")
clean = [r.value for r in rows if r.level == 0.0 and r.metric == "perplexity_en"]
print(f"clean_perplexity_en: {clean[0]:.4f}")
EOF
}

"$PY" -m datamodules.sample_corpus data/tiny > "$out/corpus.log" 2>&1 || { echo "error: bench/gpu.sh: could not write the sample corpus (see $out/corpus.log)" >&2; exit 1; }

run tiny_fit 150 "$PY" run.py fit "${common[@]}" --trainer.max_steps=$fit_steps --trainer.default_root_dir="$work/fit"
checkpoint=$work/fit/checkpoints/last.ckpt
run tiny_test 120 "$PY" run.py test "${common[@]}" --trainer.default_root_dir="$work/test" --ckpt_path="$checkpoint"
csv_figures "$work/test" 2>/dev/null | sed 's/^/tiny_test./'
run ddp_1gpu 150 "$PY" run.py test "${common[@]}" --trainer.strategy=ddp --trainer.default_root_dir="$work/ddp" --ckpt_path="$checkpoint"
"$PY" - "$work/test" "$work/ddp" 2>/dev/null <<'EOF' | sed 's/^/ddp_1gpu./'
import sys
from pathlib import Path
from cognitive_reserve import read_sweep_csv
single, ddp = ([*Path(d, "robustness").glob("sweep_test_epoch*[0-9].csv")][0] for d in sys.argv[1:])
a, b = read_sweep_csv(single), read_sweep_csv(ddp)
same_trials = [(r.level, r.trial, r.metric) for r in a] == [(r.level, r.trial, r.metric) for r in b]
print(f"same_trials_as_single: {str(same_trials).lower()}")
print(f"max_rel_diff_vs_single: {max(abs(x.value - y.value) / abs(x.value) for x, y in zip(a, b)):.2e}")
EOF
run sweep_overhead 150 "$PY" bench/sweep_overhead.py --device "$device" "${overhead_args[@]}"
run sweep_memory 90 "$PY" bench/sweep_memory.py --device "$device"
run stacked_trials 90 "$PY" bench/stacked_trials.py --device "$device" --repeats $bench_repeats "${stacked_args[@]}"
run subsampled 150 "$PY" bench/subsampled_eval.py --device "$device" --init-from "$checkpoint" "${subsampled_args[@]}"
run gpt2_small 120 "$PY" - "$device" $small_shape <<'EOF'
"""A GPT-2-small-shaped model (random weights): clean pass and sweep time, bf16 autocast on CUDA."""
import sys, time
import torch
sys.path.insert(0, "bench")
from sweep_memory import GPT2_SMALL
from cognitive_reserve import SweepGrid, run_sweep
import lightning_modules.gpt2_lm as gpt2_lm
device, blocks, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = gpt2_lm.GPT2LanguageModel(gpt2_config={**GPT2_SMALL, "bos_token_id": 0, "eos_token_id": 0, "n_positions": 1024}, tokenizer="train")
model.languages = ["en"]
model.to(device).eval()
tokens = torch.randint(0, GPT2_SMALL["vocab_size"], (blocks, length + 1), generator=torch.Generator().manual_seed(0))
batch = {"input_ids": tokens[:, :-1], "targets": tokens[:, 1:], "language": torch.zeros(blocks, dtype=torch.long), "num_bytes": torch.full((blocks,), 4 * length)}
(subject,) = model.robustness_subjects([{k: v.to(device) for k, v in batch.items()}])
autocast = torch.bfloat16 if device == "cuda" else None
grids = [SweepGrid("random_deletion", [0.1, 0.3], 4), SweepGrid("gaussian_noise", [0.01], 4)]
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
run_sweep(subject, grids[:1], autocast=autocast)  # warm-up
sync(); begin = time.perf_counter()
rows = run_sweep(subject, grids, autocast=autocast)
sync(); seconds = time.perf_counter() - begin
trials = len({(r.perturbation, r.level, r.trial) for r in rows})
print(f"params: {sum(p.numel() for p in model.parameters())}")
print(f"tokens_per_trial: {blocks * length}")
print(f"trials: {trials}")
print(f"sweep_s: {seconds:.2f}")
print(f"per_trial_ms: {1000 * seconds / trials:.1f}")
EOF
echo "gpu_sh.device: $device"
echo "gpu_sh.total_s: $(( $(date +%s) - start_all ))"
echo "gpu_sh.failed_steps: $failures"
echo "gpu_sh.logs: $out"
[ $failures -eq 0 ]
