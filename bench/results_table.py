"""Write the benchmark table and notes of ``docs/performance.md`` from the recorded outputs in ``bench/results/``.

    python bench/results_table.py           # rewrite the part of docs/performance.md between the markers
    python bench/results_table.py --check   # exit 1 when that part differs from what the recordings give

Every number of the table is a ``name: value`` line of a recorded output (``python bench/record.py <script>``):
nothing is copied by hand. A row whose recording is missing says so.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench-results:begin -->", "<!-- bench-results:end -->"


class Recording:
    """One recorded output: its ``# key: value`` header and its ``name: value`` figures."""

    def __init__(self, path: Path) -> None:
        self.name = path.stem
        self.header: dict[str, str] = {}
        self.figures: dict[str, str] = {}
        for line in path.read_text("utf-8").splitlines():
            target = self.header if line.startswith("# ") else self.figures
            key, _, value = line.removeprefix("# ").partition(": ")
            target[key] = value

    def __getitem__(self, name: str) -> float:
        return float(self.figures[name])

    def text(self, name: str) -> str:
        return self.figures[name]


Recordings = dict[str, Recording]
#: (what, recording, target, measured) per row; ``what`` may name figures (``{name}``), ``measured`` formats them.
Row = tuple[str, str, str, Callable[[Recording], str]]


def extra_memory(r: Recording, model: str) -> float:
    """The largest extra peak over the targets among the perturbations (and pruning scopes) of ``model`` in place."""
    prefix, suffix = f"{model}_", "_extra_over_targets"
    return max(
        float(v) for k, v in r.figures.items()
        if k.startswith(prefix) and k.endswith(suffix) and not k.removeprefix(prefix).startswith("stacked_")
    )  # fmt: skip


def temporaries(r: Recording, model: str, naive: bool = False) -> str:
    kind = "naive_temporaries" if naive else "temporaries"
    families = ("gaussian_noise", "random_deletion", "magnitude_pruning", "magnitude_pruning_global")
    return " / ".join(r.text(f"{model}_{family}_{kind}_over_targets") for family in families)


def structural_per_trial(r: Recording) -> str:
    attn = " / ".join(
        f"{r[f'{p}_attn_per_trial_over_clean']:.3f}" for p in ("random_deletion", "head_deletion", "bit_flip")
    )
    mlp = " / ".join(
        f"{r[f'{p}_mlp_per_trial_over_clean']:.3f}"
        for p in ("random_deletion", "neuron_deletion", "activation_fault", "activation_fault_noise")
    )
    versus = ", ".join(
        f"{what} **{r[f'{case}_vs_random_deletion']:.3f}** [{r.text(f'{case}_vs_random_deletion_range')}]"
        for what, case in (("head", "head_deletion_attn"), ("bit flip", "bit_flip_attn"))
    )
    return f"{attn}; {mlp} (÷ random deletion: {versus})"


def structural_damage(r: Recording, figure: str) -> str:
    """One figure of every case of ``bench/structural_cost.py`` on GPT-2-small-shaped weights: attention; MLP."""
    attn = ("random_deletion_attn", "head_deletion_attn", "bit_flip_attn")
    mlp = ("random_deletion_mlp", "neuron_deletion_mlp", "activation_fault_mlp", "activation_fault_noise_mlp")
    return "; ".join(" / ".join(r.text(f"gpt2_small_shape_{c}_{figure}") for c in cases) for cases in (attn, mlp))


def stacked_bytes(r: Recording) -> list[float]:
    prefix = "linear_digits_T20_stacked_"
    return [float(v) for k, v in r.figures.items() if k.startswith(prefix) and k.endswith("_extra_bytes")]


def adaptive(r: Recording) -> str:
    return (
        f"**{r['evaluations_ratio']:.2f}×** ({r.text('fixed_evaluations')} → {r.text('adaptive_evaluations')} "
        f"evaluations), worst level {r.text('adaptive_worst_relative_half_width')} vs "
        f"{r.text('fixed_worst_relative_half_width')} relative; wall time {r['wall_ratio']:.2f}×; trials per random "
        f"level {r.text('adaptive_trials_min')}–{r.text('adaptive_trials_max')} "
        f"(median {r.text('adaptive_trials_median')})"
    )


def subsampled(r: Recording) -> str:
    return (
        f"**{r['evaluated_examples_ratio']:.2f}×** ({r.text('fixed_examples')} → {r.text('subsampled_examples')} "
        f"blocks), worst-level interval ratio **{r.text('worst_level_ci_ratio')}**; wall time {r['wall_ratio']:.2f}×; "
        f"adaptive trials on all the data alone {r['adaptive_full_ratio']:.2f}×; with every level held to its own "
        f"fixed-sweep width {r['per_level_examples_ratio']:.2f}× (worst level {r.text('per_level_worst_ci_ratio')})"
    )


def slurm_requeue(r: Recording) -> str:
    return (
        f"launch {r['launch_per_point_s']:.2f} s per point, queued → job running {r['submit_to_job_s_median']:.1f} s "
        f"(median); signal → training again **{r['signal_to_training_s_median']:.0f} s** (median of "
        f"{r.text('requeues')} requeues: the stop and requeue {r['signal_to_job_end_s_median']:.1f} s, SLURM's requeue "
        f"delay and start {r['job_end_to_restart_s_median']:.0f} s, `run.py` start and restore "
        f"{r['restart_to_training_s_median']:.0f} s); steps trained again after a requeue: "
        f"**{r.text('steps_retrained_max')}**"
    )


ROWS: list[Row] = [
    (
        "sweep ÷ (trials × clean pass), tiny GPT-2, {gpt2_tiny_trials} trials × {gpt2_tiny_eval_blocks} test blocks",
        "sweep_overhead", "≤ 1.10", lambda r: f"**{r['gpt2_tiny_sweep_overhead']:.2f}**",
    ),
    (
        "the same, 12 linear digits models, {linear_digits_trials} trials of a {linear_digits_clean_pass_ms} ms "
        "pass, as configured (`trial_batch: {linear_digits_trial_batch}`)",
        "sweep_overhead", "≤ 1.10",
        lambda r: f"**{r['linear_digits_sweep_overhead']:.2f}** (in place, `trial_batch: 1`: "
        f"{r['linear_digits_in_place_sweep_overhead']:.2f}, "
        f"~{r['linear_digits_in_place_overhead_per_trial_us_cpu']:.0f} µs per trial)",
    ),
    (
        "speed-up over the naive method (deepcopy, batches rebuilt from the text, temporary buffers), identical rows",
        "sweep_overhead", "> 1, equal",
        lambda r: f"tiny GPT-2 **{r['gpt2_tiny_speedup_vs_naive']:.2f}×**, linear T=20 "
        f"**{r['linear_digits_T20_speedup_vs_naive']:.0f}×** (stacked); rows identical: "
        f"{r.text('gpt2_tiny_naive_equal')}, {r.text('linear_digits_T20_naive_equal')}",
    ),
    (
        "sweep time ∝ forward pass: sweep ÷ pass for {scaling_trials} trials at {gpt2_2x64_params} / "
        "{gpt2_4x128_params} / {gpt2_4x256_params} parameters",
        "sweep_overhead", "—",
        lambda r: " / ".join(f"{r[f'gpt2_{size}_sweep_per_pass']:.1f}" for size in ("2x64", "4x128", "4x256")),
    ),
    (
        "extra peak memory of a sweep in place ÷ bytes of the targeted tensors (worst of the three perturbations "
        "and both pruning scopes)",
        "sweep_memory", "≤ 1.1",
        lambda r: f"**{extra_memory(r, 'gpt2_tiny'):.2f}** tiny GPT-2, **{extra_memory(r, 'gpt2_small_shape'):.2f}** "
        f"GPT-2-small-shaped ({r['gpt2_small_shape_target_bytes'] / 1e6:.0f} MB targets), "
        f"**{extra_memory(r, 'linear_digits_T20'):.2f}** linear T=20",
    ),
    (
        "the same, linear T=20 stacked as configured (`trial_batch: 32`)",
        "sweep_memory", "—",
        lambda r: f"{min(stacked_bytes(r)) / 1e6:.2f}–{max(stacked_bytes(r)) / 1e6:.2f} MB for its "
        f"{r.text('linear_digits_T20_stacked_target_bytes')}-byte targets (32 copies of *W* and their activations)",
    ),
    (
        "the perturbations' own buffers ÷ target bytes, GPT-2-small-shaped: noise / deletion / pruning per tensor / "
        "global",
        "sweep_memory", "—",
        lambda r: f"{temporaries(r, 'gpt2_small_shape')} (naive: {temporaries(r, 'gpt2_small_shape', naive=True)})",
    ),
    (
        "SpectralMonitor every {spectral_every_n_steps} steps, share of the tiny GPT-2 training step",
        "spectral_overhead", "≤ 2 %",
        lambda r: f"**{100 * r['spectral_power_overhead']:.1f} %** power iteration "
        f"({100 * r['spectral_exact_overhead']:.1f} % `svdvals`) of a {r['train_step_ms_power_run']:.0f} ms step; "
        f"power ÷ `svdvals` per measurement {r['spectral_power_vs_svdvals']:.2f}",
    ),
    (
        "per-epoch sweep of the tiny GPT-2 configs, share of training time",
        "epoch_sweep_share", "≤ 25 %",
        lambda r: f"**{100 * r['tiny_bilingual_epoch_sweep_share']:.0f} %** bilingual, "
        f"**{100 * r['tiny_monolingual_epoch_sweep_share']:.0f} %** monolingual",
    ),
    (
        "test-time sweep through `run.py test`, 2 DDP processes (gloo) vs 1 process",
        "ddp_scaling", "report",
        lambda r: f"{r['speedup_ddp2_vs_1proc_1thread']:.2f}× vs 1 process × 1 thread, "
        f"{r['speedup_ddp2_vs_1proc_2threads']:.2f}× vs 1 process × 2 threads (2 cores in all); same rows: "
        f"{r.text('ddp2_same_rows')}, values within {r.text('ddp2_max_rel_diff')} relative",
    ),
    (
        "`python run.py fit --config configs/linear/digits.yaml`, end to end, 1 thread",
        "digits_e2e", "report",
        lambda r: f"**{r['digits_fit_s_1threads']:.1f} s** ({r['python_imports_s']:.1f} s of it imports, "
        f"{r['digits_sweep_s_1threads']:.2f} s the sweep); 2 threads: {r['digits_fit_s_2threads']:.1f} s",
    ),
    (
        "the paper's GPT-2 test grid (9 deletion + 11 noise levels × 20, 7 pruning), tiny GPT-2, random weights, "
        "110 test blocks: evaluations, fixed 20 trials ÷ adaptive at the widest relative half-width the fixed sweep "
        "reached",
        "adaptive_trials", "≥ 3× at an equal or narrower worst-level interval", adaptive,
    ),
    (
        "the same, the tiny monolingual GPT-2 trained by the "
        "[GPT-2 tiny chain](experiments/gpt2.md#tiny-on-cpu-offline) (evaluated on the bilingual sample test split)",
        "adaptive_trials_trained", "〃", adaptive,
    ),
    (
        "stacked (vmap) ÷ in-place sweep time, tiny GPT-2, {trials} trials × 32 test blocks, on {device}",
        "stacked_trials", "report",
        lambda r: f"in place {r['in_place_s']:.2f} s; **8 copies {r['speedup_8']:.2f}×**, **32 copies "
        f"{r['speedup_32']:.2f}×** (above 1: faster); rows identical bit for bit: {r.text('identical_8').lower()}, "
        f"{r.text('identical_32').lower()}",
    ),
    (
        "the paper's GPT-2 test grid, the tiny GPT-2 trained by the script, {blocks} test blocks: evaluated examples, "
        "fixed 20 full-data trials ÷ adaptive trials with `eval_fraction: auto` at the widest relative half-width "
        "the fixed sweep reached",
        "subsampled_eval", "≥ 8× at an equal or narrower worst-level interval", subsampled,
    ),
    (
        "layer-wise test sweep ÷ the all-targets sweep, tiny GPT-2, {eval_blocks} test blocks",
        "layer_sweep_cost", "report",
        lambda r: "; ".join(
            f"`{rule}` ({r.text(f'groups_{rule}')} groups): {r[f'{rule}_evaluations_ratio']:.2f}× the evaluations, "
            f"{r[f'{rule}_cpu_ratio']:.2f}× the CPU time"
            for rule in ("per_block", "per_matrix")
        ),
    ),
    (
        "per-epoch sweep, share of training time, `tiny_bilingual` alone and with the layer-wise overlay "
        "`tiny_layers.yaml`",
        "epoch_sweep_share_layers", "report",
        lambda r: f"{100 * r['tiny_bilingual_epoch_sweep_share']:.0f} % → "
        f"**{100 * r['tiny_bilingual+tiny_layers_epoch_sweep_share']:.0f} %** with the overlay",
    ),
    (
        "the study launcher's own time per point (submit, job start, lock, bookkeeping), {points} points of "
        "`digits_examples_per_task.yaml`",
        "study_overhead", "≤ 2 s per point, or ≤ 5 % of a tiny point",
        lambda r: f"**{r['overhead_per_point_s']:.2f} s** per point next to a {r['point_run_s']:.1f} s point "
        f"({100 * r['overhead_share']:.1f} %); target met: {r.text('target_met')}",
    ),
    (
        "studies on SLURM (the single-node cluster of `.ci/slurm-up.sh`): `launch` of {points} digits points; a tiny "
        "GPT-2 point of {gpt2_steps} steps with a 1-minute time limit, from SLURM's warning signal to training again",
        "slurm_requeue", "report", slurm_requeue,
    ),
    (
        "a trial ÷ one clean pass, tiny GPT-2, {gpt2_tiny_eval_blocks} test blocks, level {level}, side by side: "
        "attention weights (random deletion / head deletion / bit flip), MLP weights (random deletion / neuron "
        "deletion / activation fault, zero / noise); median of {repeats} interleaved rounds, [lowest–highest round]: "
        "holds the median with probability {ratio_range_covers_median}",
        "structural_cost", "head deletion and bit flip ≤ random deletion", structural_per_trial,
    ),
    (
        "the damage alone (damage and restore), µs per trial, GPT-2-small-shaped random weights, level 0.25: same "
        "order as above",
        "structural_cost", "—", lambda r: structural_damage(r, "damage_us"),
    ),
    (
        "the same perturbations' own buffers ÷ target bytes, GPT-2-small-shaped, same order",
        "structural_cost", "≪ 1 (a few chunks or unit tables, not a copy)",
        lambda r: structural_damage(r, "temporaries_over_targets"),
    ),
]  # fmt: skip


def notes(rec: Recordings) -> list[str]:
    """What to know, with the recordings' numbers (a note whose recording is missing is left out)."""
    out = []
    if "sweep_overhead" in rec and "sweep_memory" in rec:
        s, m = rec["sweep_overhead"], rec["sweep_memory"]
        in_place = s["linear_digits_in_place_sweep_overhead"]
        out.append(
            f"**Time and memory pull apart on the linear models.** In place they meet the memory target "
            f"({extra_memory(m, 'linear_digits_T20'):.2f}) and "
            f"{'meet' if in_place <= 1.10 else 'miss'} the time target ({in_place:.2f}: a "
            f"{s['linear_digits_in_place_clean_pass_ms']:.2f} ms pass against ~"
            f"{s['linear_digits_in_place_overhead_per_trial_us_cpu']:.0f} µs of per-trial work); stacked, as "
            f"configured, {s['linear_digits_sweep_overhead']:.2f} of the time with {min(stacked_bytes(m)) / 1e6:.2f}–"
            f"{max(stacked_bytes(m)) / 1e6:.2f} MB of extra memory. The tiny GPT-2 sweeps in place: its "
            f"{s['gpt2_tiny_clean_pass_ms']:.0f} ms pass hides the per-trial work."
        )
        out.append(
            f"**bf16.** `PerturbationSweep(autocast_bf16: true)` evaluates the damaged models under bf16 autocast: "
            f"meant for GPUs (off by default, and CSV fingerprints differ so a resumed sweep never mixes the two). On "
            f"the tiny GPT-2 (random weights) values moved by at most {s.text('gpt2_tiny_bf16_max_rel_diff')} relative "
            f"(median {s.text('gpt2_tiny_bf16_median_rel_diff')}); the CPU sweep time ratio float32 ÷ bf16 was "
            f"{s['gpt2_tiny_bf16_speedup']:.2f}."
        )
    if "epoch_sweep_share" in rec:
        e = rec["epoch_sweep_share"]
        shares = [e[f"tiny_{c}_sweep_report_s"] / e[f"tiny_{c}_sweep_s"] for c in ("bilingual", "monolingual")]
        out.append(
            f"**Per-epoch sweeps** in `configs/gpt2/tiny_*.yaml` use a fixed, seeded subset of 32 validation blocks "
            f"(`max_eval_samples: 32`) and the full configs' per-epoch grid (magnitude pruning, 7 levels). Of each "
            f"per-epoch sweep, {100 * min(shares):.0f}–{100 * max(shares):.0f} % is its summary CSV, figure and W&B "
            f"logging ({e['tiny_monolingual_sweep_report_s']:.2f} s and {e['tiny_bilingual_sweep_report_s']:.2f} s), "
            f"not its 7 evaluation passes."
        )
    for name, weights in (("adaptive_trials", "random-weight"), ("adaptive_trials_trained", "trained")):
        if name in rec:
            r = rec[name]
            verdict = "met" if r["evaluations_ratio"] >= 3 else "missed"
            out.append(
                f"**Adaptive trials {verdict} the 3× target on the {weights} tiny GPT-2** "
                f"({r['evaluations_ratio']:.2f}×). The target is the widest level's relative half-width in the fixed "
                f"sweep ({r.text('target_relative_half_width')}, ±{100 * r['target_relative_half_width']:.0f} % of its "
                f"mean); random levels got {r.text('adaptive_trials_min')}–{r.text('adaptive_trials_max')} trials "
                f"(median {r.text('adaptive_trials_median')}) against the fixed sweep's 20. The rule stops no level "
                "before its `min`, by default 20, because levels that stopped at 3 trials had intervals covering "
                "40–89 % of known truths ([honest intervals](intervals.md#adaptive-trials-what-the-rule-guarantees-"
                "and-what-not)): against a fixed 20-trial sweep it saves nothing, and spends more trials (up to `max`) "
                "where a level's interval is still wider than the target or a deletion's small `p` needs more "
                "trials (`rare_events`: 31 at `p` = 0.1, 63 at 0.05). The 3× target was set for the rule that "
                "stopped at 3."
            )
    if "structural_cost" in rec:
        out.append(structural_note(rec["structural_cost"]))
    return out


def versus_random_deletion(r: Recording, case: str) -> str:
    """``case``'s per-trial time ÷ random deletion's: the median, its range, and whether the range holds 1."""
    ratio, spread = r[f"{case}_vs_random_deletion"], r.text(f"{case}_vs_random_deletion_range")
    low, high = (float(x) for x in spread.split("–"))
    where = "lies above 1: dearer beyond the timing noise" if low > 1 else "holds 1: within the timing noise"
    where = "lies below 1: cheaper beyond the timing noise" if high < 1 else where
    return f"**{ratio:.3f}** [{spread}; the range {where}]"


def structural_note(r: Recording) -> str:
    """What ``bench/structural_cost.py`` shows of head deletion and bit flips against random deletion."""
    damage = {case: r[f"{case}_attn_damage_us"] for case in ("random_deletion", "head_deletion", "bit_flip")}
    small = {case: r[f"gpt2_small_shape_{case}_attn_damage_us"] / 1e3 for case in damage}
    trial_ms = r["random_deletion_attn_per_trial_over_clean"] * r["clean_pass_ms"]
    extra_ms = (r["bit_flip_attn_vs_random_deletion"] - 1) * trial_ms
    gap_ms = (damage["bit_flip"] - damage["random_deletion"]) / 1e3
    damage_gap = f"{gap_ms:.1f} ms more" if gap_ms > 0 else f"{-gap_ms:.1f} ms less"
    return (
        f"**Structural perturbations' cost** (`bench/results/structural_cost.txt`, load average "
        f"{r.header['load_before']} before; "
        f"each ratio is the median of {r.text('repeats')} interleaved rounds, in brackets the lowest and highest "
        f"round, which hold the median with probability {r.text('ratio_range_covers_median')}): a trial of the tiny "
        f"GPT-2 is one {r['clean_pass_ms']:.0f} ms clean pass plus the damage and restore "
        f"({damage['random_deletion']:.0f} µs for random deletion of the attention weights, "
        f"{damage['head_deletion']:.0f} µs for head deletion, {damage['bit_flip']:.0f} µs for bit flips; on "
        f"GPT-2-small-shaped weights {small['random_deletion']:.0f}, {small['head_deletion']:.0f} and "
        f"{small['bit_flip']:.0f} ms). Per trial, head deletion ÷ random deletion: "
        f"{versus_random_deletion(r, 'head_deletion_attn')}. A bit flip ÷ random deletion: "
        f"{versus_random_deletion(r, 'bit_flip_attn')}, about {extra_ms:.1f} ms of a {trial_ms:.0f} ms trial, and "
        f"the damage is not why (it takes {damage_gap} than random deletion's on the tiny GPT-2, "
        f"{'less' if small['bit_flip'] < small['random_deletion'] else 'more'} on GPT-2-small-shaped weights). "
        "The extra time is the evaluation of the damaged model itself: a flipped "
        "exponent bit makes weights of order 1e38, the activations overflow to inf and NaN (or underflow to "
        "subnormals), and this CPU runs element-wise operations on such values more slowly (`torch.profiler` on one "
        "pass puts the difference in the GELU's `tanh`, `add` and the log-softmax). So the target \"a bit flip costs "
        'no more than random deletion per trial" holds for what the perturbation does, not for evaluating the model '
        "it leaves behind on this CPU. GPUs compute on inf, NaN and subnormals at full speed, but this has not been "
        "measured (no GPU yet). `bits: mantissa` or `sign` leaves no overflow behind."
    )


def render(rec: Recordings) -> str:
    lines = ["| what | command | target | measured |", "|---|---|---|---|"]
    for what, name, target, measured in ROWS:
        command = f"`{rec[name].header['command']}`" if name in rec else f"`{name}` (not recorded)"
        if name in rec:
            lines.append(f"| {what.format_map(rec[name].figures)} | {command} | {target} | {measured(rec[name])} |")
        else:
            lines.append(f"| {what} | {command} | {target} | not recorded |")
    lines += ["", "Where and when each script ran (load average: 1, 5 and 15 minutes, before → after):", ""]
    lines += ["| recording | machine | started | threads | GPU | torch | load before → after |", "|---" * 7 + "|"]
    for r in rec.values():
        h, f = r.header, r.figures
        lines.append(
            f"| `bench/results/{r.name}.txt` | {h['machine']} | {h['started']} | {f.get('threads', '—')} | "
            f"{f.get('gpu', '—')} | {f.get('torch', '—')} | {h['load_before']} → {h['load_after']} |"
        )
    lines += ["", *[f"- {note}" for note in notes(rec)]]
    return "\n".join(lines)


def page_with(text: str, generated: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{generated}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/performance.md is out of date")
    args = parser.parse_args()
    rec = {path.stem: Recording(path) for path in sorted(RESULTS.glob("*.txt"))}
    text = PAGE.read_text("utf-8")
    wanted = page_with(text, render(rec))
    if args.check:
        if wanted != text:
            sys.exit("docs/performance.md is out of date with bench/results/: run python bench/results_table.py")
        return
    PAGE.write_text(wanted, "utf-8")


if __name__ == "__main__":
    main()
