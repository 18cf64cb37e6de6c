"""Subsampled trials (``eval_fraction``): the estimator, the allocation, honest intervals against a known truth,
the CSV column, resume, and the real models' unit scoring."""

from __future__ import annotations

import itertools
import math
import warnings

import lightning as L
import pytest
import torch
from scipy import stats

from cognitive_reserve import ConfigError, SweepCsvWriter, SweepGrid, read_sweep_csv, run_sweep, summarize
from cognitive_reserve.adaptive import AdaptiveTrials
from cognitive_reserve.allocation import PILOT_UNITS, Plan, TrialRecord, plan
from cognitive_reserve.subsampling import UnitScoring, add_states, difference_estimate, subset
from tests.helpers.unit_regression import ITEMS, Regression


def test_the_difference_estimator_is_unbiased_over_every_subset():
    generator = torch.Generator().manual_seed(1)
    clean = [{"sse": torch.rand(2, generator=generator, dtype=torch.float64)} for _ in range(6)]
    damaged = [{"sse": c["sse"] + torch.rand(2, generator=generator, dtype=torch.float64)} for c in clean]
    full = add_states(damaged)["sse"]
    for size in (1, 2, 4):
        estimates = [
            difference_estimate(
                add_states(clean), [{"sse": damaged[b]["sse"] - clean[b]["sse"]} for b in chosen], len(clean)
            )["sse"]
            for chosen in itertools.combinations(range(6), size)
        ]
        assert torch.stack(estimates).mean(0) == pytest.approx(full, rel=1e-12)
    everything = [{"sse": d["sse"] - c["sse"]} for d, c in zip(damaged, clean, strict=True)]
    assert difference_estimate(add_states(clean), everything, 6)["sse"] == pytest.approx(full, rel=1e-12)


def test_subsets_are_seeded_per_trial_and_nested():
    order = subset(12345, 40)
    assert sorted(order) == list(range(40)) and order == subset(12345, 40) and order != subset(12346, 40)


#: Relative half-width every level of the studies below reaches in about 20 full-data trials or fewer.
TARGET = {"ci_half_width": 0.3, "relative": True, "max": 50}
#: Studies (sweeps) of the coverage tests: 3 levels each, so ±2 standard errors of a 95 % coverage are under 1.5
#: points.
STUDIES = 300


def coverage(fraction, trials, studies: int = STUDIES) -> tuple[float, list[int | None]]:
    """Share of the reported 95 % intervals (3 levels × ``studies`` base seeds) covering the expected full-data MSE
    under Gaussian noise on w, and every trial's ``eval_examples``."""
    model = Regression()
    grid = SweepGrid("gaussian_noise", [0.1, 0.3, 1.0], trials, eval_fraction=fraction)
    covered, total, examples = 0, 0, []
    for study in range(studies):
        rows = run_sweep(model.subject(), [grid], seed=study)
        for summary in summarize(rows):
            assert summary.flag == ""
            covered += summary.ci_low <= model.truth(summary.level) <= summary.ci_high
            total += 1
        examples += [r.eval_examples for r in {(r.level, r.trial): r for r in rows}.values()]
    return covered / total, examples


@pytest.mark.slow  # 300 sweeps per mode
@pytest.mark.parametrize("fraction", ["auto", 0.2])
def test_95_percent_intervals_of_subsampled_trials_cover_the_known_truth_in_at_least_93_percent_of_studies(fraction):
    share, examples = coverage(fraction, 10)
    assert share >= 0.93
    assert sum(examples) < 0.5 * len(examples) * ITEMS * 60  # the trials scored far less than all the data


@pytest.mark.slow  # 600 sweeps
def test_adaptive_subsampled_intervals_cover_as_often_as_adaptive_full_data_ones():
    """The adaptive rule's stop on a narrow interval costs a little coverage with all the data too
    (``docs/intervals.md`` has the long-run numbers); subsampling must not make it worse."""
    subsampled, examples = coverage("auto", TARGET)
    full, _ = coverage(1.0, TARGET)
    assert subsampled >= full - 0.02 and subsampled >= 0.92
    assert sum(examples) < 0.5 * len(examples) * ITEMS * 60


def test_auto_allocation_scores_fewer_examples_than_full_trials_at_an_equal_interval():
    model = Regression()
    full = run_sweep(model.subject(), [SweepGrid("gaussian_noise", [1.0], TARGET)])
    auto = run_sweep(model.subject(), [SweepGrid("gaussian_noise", [1.0], TARGET, eval_fraction="auto")])
    full_examples = len(full) * ITEMS * 60
    auto_examples = sum(r.eval_examples for r in auto) + ITEMS * 60  # + the clean pass
    assert auto_examples < full_examples / 2
    (summary,) = summarize(auto)
    assert (summary.ci_high - summary.ci_low) / 2 <= TARGET["ci_half_width"] * abs(summary.mean)


def test_a_fixed_fraction_scores_the_first_units_of_each_trials_seeded_order():
    model = Regression(units=10)
    rows = run_sweep(model.subject(), [SweepGrid("random_deletion", [0.0, 0.5], 3, eval_fraction=0.3)])
    assert [r.eval_examples for r in rows if r.level == 0.0] == [None]  # deterministic: all the data
    for row in (r for r in rows if r.level == 0.5):
        assert row.eval_examples == 3 * ITEMS
        chosen = subset(row.seed, 10)[:3]
        damaged = model.subject()
        expected = _estimate_by_hand(model, row, chosen)
        assert row.value == pytest.approx(expected, rel=1e-9), damaged.name


def _estimate_by_hand(model: Regression, row, chosen: list[int]) -> float:
    """C + N/n Σ (d − c) for the trial of ``row``, damaging a copy of w with the trial's own draw."""
    from cognitive_reserve.perturbations import make_perturbation
    from cognitive_reserve.seeding import make_generator

    clean = model.states(range(10))
    original = model.module.w.detach().clone()
    with torch.no_grad():
        make_perturbation("random_deletion", 0.5).apply_([model.module.w.detach()], make_generator(row.seed))
        damaged = model.states(chosen)
        model.module.w.copy_(original)
    sse = sum(float(c["sse"]) for c in clean) + 10 / 3 * sum(
        float(d["sse"] - clean[b]["sse"]) for b, d in zip(chosen, damaged, strict=True)
    )
    return sse / (10 * ITEMS)


def test_eval_fraction_one_changes_nothing():
    model = Regression(units=8)
    grid = {"perturbation": "gaussian_noise", "levels": [0.0, 0.5], "trials": 4}
    plain = run_sweep(model.subject(units=False), [SweepGrid(**grid)])
    assert run_sweep(model.subject(), [SweepGrid(**grid, eval_fraction=1.0)]) == plain
    assert all(r.eval_examples is None for r in plain)


def test_a_subject_that_cannot_score_units_uses_all_the_data_with_a_warning():
    model = Regression(units=8)
    grid = SweepGrid("gaussian_noise", [0.5], 3, eval_fraction=0.5)
    with pytest.warns(UserWarning, match="cannot score parts of its data"):
        rows = run_sweep(model.subject(units=False), [grid])
    assert all(r.eval_examples is None for r in rows)


def test_metrics_without_an_estimator_use_all_the_data_with_a_warning():
    model = Regression(units=8)
    subject = model.subject()
    subject.units = UnitScoring(subject.units.sizes, subject.units.states, lambda s: {"mcc": model.values(s)["mse"]})
    with pytest.warns(UserWarning, match=r"metrics \['mcc'\] are not sums over examples"):
        rows = run_sweep(subject, [SweepGrid("gaussian_noise", [0.5], 3, eval_fraction="auto")])
    assert all(r.eval_examples is None for r in rows)


def test_an_interrupted_auto_sweep_resumes_to_the_uninterrupted_table(tmp_path):
    model = Regression(units=30)
    grids = [SweepGrid("gaussian_noise", [0.2, 1.0], {"ci_half_width": 0.05, "relative": True}, eval_fraction="auto")]
    whole = run_sweep(model.subject(), grids)
    path = tmp_path / "sweep.csv"
    written: list = []

    def stop_after_four(rows):
        written.append(rows)
        if len(written) == 4:
            raise KeyboardInterrupt

    with SweepCsvWriter(path) as writer, pytest.raises(KeyboardInterrupt):
        run_sweep(model.subject(), grids, on_trial=lambda rows: (writer.write(rows), stop_after_four(rows)))
    resumed = run_sweep(model.subject(), grids, completed=read_sweep_csv(path))
    assert resumed == whole and len({r.trial for r in whole if r.level == 1.0}) > 4


def test_old_csvs_without_eval_examples_still_read_and_new_ones_round_trip(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text(
        "model,num_tasks,perturbation,level,trial,seed,metric,value,expected,stage,epoch\n"
        "m,1,random_deletion,0.5,0,7,perplexity_en,3.5,,test,2\n"
    )
    (row,) = read_sweep_csv(old)
    assert row.eval_examples is None and row.value == 3.5
    model = Regression(units=10)
    rows = run_sweep(model.subject(), [SweepGrid("gaussian_noise", [0.5], 2, eval_fraction=0.5)])
    with SweepCsvWriter(tmp_path / "new.csv") as writer:
        writer.write(rows)
    assert read_sweep_csv(tmp_path / "new.csv") == rows
    assert (tmp_path / "new.csv").read_text().splitlines()[0].endswith(",epoch,group,eval_examples")


@pytest.mark.parametrize(
    ("fraction", "message"),
    [
        ("half", r"^random_deletion.eval_fraction='half': must be 'auto' or a number in \(0, 1\]$"),
        (0, r"^random_deletion.eval_fraction=0: must be > 0$"),
        (1.5, r"^random_deletion.eval_fraction=1.5: must be <= 1$"),
        (True, r"^random_deletion.eval_fraction=True: must be a finite number$"),
    ],
)
def test_eval_fraction_validation_names_the_field(fraction, message):
    with pytest.raises(ConfigError, match=message):
        SweepGrid("random_deletion", [0.5], 3, eval_fraction=fraction)


def test_stacked_trials_are_refused_next_to_a_subsampled_grid():
    model = Regression(units=8)
    with pytest.raises(ConfigError, match=r"^trial_batch=4: subsampled trials .* are scored in place; use 1$"):
        run_sweep(model.subject(), [SweepGrid("gaussian_noise", [0.5], 3, eval_fraction=0.5)], trial_batch=4)


def records(values: list[float], noise: float, units: int) -> list[TrialRecord]:
    return [TrialRecord(units, {"mse": v}, {"mse": noise}) for v in values]


def test_allocation_pilots_then_follows_the_two_variances():
    rule = AdaptiveTrials(ci_half_width=0.1, min=3, max=50)
    assert plan(0.25, rule, [], 100).units == 25
    assert plan("auto", rule, records([1.0, 2.0], 0.0, 8), 100).units == PILOT_UNITS  # still piloting
    # no subset noise: the cheapest plan is the fewest units, and as many trials as the target needs
    planned = plan("auto", rule, records([1.0, 1.2, 1.1], 0.0, 8), 100)
    quantile = stats.t.ppf(0.975, df=24)  # at the planned 25 trials (half of max)
    assert planned == Plan(2, math.ceil(0.01 / (0.1 / quantile) ** 2))
    # subset noise only (equal values): enough units for the target within the planned trials
    noisy = plan("auto", rule, records([1.0, 1.0, 1.0], 0.05, 8), 100).units
    quiet = plan("auto", rule, records([1.0, 1.0, 1.0], 0.005, 8), 100).units
    assert 2 < quiet < noisy <= 100
    # a target no plan reaches: all the data
    tight = AdaptiveTrials(ci_half_width=1e-6, min=3)
    assert plan("auto", tight, records([1.0, 2.0, 3.0], 0.1, 8), 100).units == 100
    # a fixed trial count: subset noise at most a tenth of the between-trial variance
    fixed = plan("auto", 20, records([1.0, 2.0, 3.0], 0.1, 8), 100).units
    k = 0.1 / (1 / 8 - 1 / 100)
    between = 1.0 - 0.1
    assert k * (1 / fixed - 1 / 100) <= 0.1 * between < k * (1 / (fixed - 1) - 1 / 100)


def test_nan_values_do_not_break_the_allocation():
    rule = AdaptiveTrials(ci_half_width=0.1, min=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plan("auto", rule, records([math.nan, math.nan, 1.0], 0.0, 8), 100).units == 100


# ---- the real models' unit scoring ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    """A tiny random GPT2LanguageModel and its validation batches (2 blocks each, the last one shorter)."""
    from datamodules import TextCorpusDataModule
    from tests.helpers.gpt2_fixtures import evaluation_setup

    documents = [f"The teacher reads letter {i} near the harbour every morning." for i in range(12)]
    model, corpus, tokenizer = evaluation_setup(tmp_path_factory.mktemp("units"), documents, 8, 300)
    datamodule = TextCorpusDataModule({"en": corpus}, train_tokens=8, block_size=8, eval_batch_size=3)
    datamodule.use_tokenizer(tokenizer)
    datamodule.setup("fit")
    model.languages = ["en"]
    return model.eval(), list(datamodule.val_dataloader())


def test_a_language_models_units_add_up_to_its_full_evaluation(language_model):
    model, batches = language_model
    (subject,) = model.robustness_subjects(batches)
    with torch.inference_mode():
        full = subject.evaluate()
        units = subject.units.values(add_states(subject.units.states(range(len(batches)))))
    assert set(full) == {"perplexity_en", "bits_per_byte_en"} and len(batches) >= 4
    assert units == pytest.approx(full, rel=1e-12)
    assert subject.units.sizes() == [len(batch["input_ids"]) for batch in batches]
    rows = run_sweep(subject, [SweepGrid("random_deletion", [0.3], 4, eval_fraction=0.5)])
    half = math.ceil(len(batches) / 2)
    assert {r.eval_examples for r in rows} <= {sum(s) for s in itertools.combinations(subject.units.sizes(), half)}
    assert all(math.isfinite(r.value) and r.value > 0 for r in rows)


@pytest.mark.parametrize("task", ["sst2", "mrpc", "cola"])
def test_a_metric_collections_state_is_a_sum_over_batches(task):
    """GLUE's metric collections (compute groups share states): the batches' states add up to the whole
    (counts summed in float64, so equal to the float32 results within their rounding)."""
    from datamodules.glue_tasks import GLUE_TASKS
    from lightning_modules.gpt2_glue import glue_metrics
    from lightning_modules.sweepable import load_metric_state, metric_state, summed_states

    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 2, (2, 9), generator=generator) for _ in range(4)]
    metric = glue_metrics(GLUE_TASKS[task])
    assert summed_states(metric)
    whole = {name: float(value) for name, value in metric(*torch.cat(batches, dim=1)).items()}
    states = []
    for predictions, labels in batches:
        metric.reset()
        metric.update(predictions, labels)
        states.append(metric_state(metric))
    load_metric_state(metric, add_states(states))
    assert {name: float(value) for name, value in metric.compute().items()} == pytest.approx(whole, rel=1e-6)


# ---- through the callback, one process and DDP ---------------------------------------------------------------


def sweep_test(root, batch_size: int, **trainer_options) -> list:
    from callbacks import PerturbationSweep
    from tests.helpers.blobs import BlobClassifier, Blobs

    grid = {"random_deletion": {"levels": [0.3, 0.6], "trials": 4, "eval_fraction": 0.5}}
    trainer = L.Trainer(
        default_root_dir=root, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[PerturbationSweep(grid, progress=False)], accelerator="cpu", **trainer_options,
    )  # fmt: skip
    trainer.test(BlobClassifier(), datamodule=Blobs(batch_size), verbose=False)
    return read_sweep_csv(root / "robustness" / "sweep_test_epoch000.csv")


def test_the_callback_sweeps_seeded_halves_of_its_batches(tmp_path):
    rows = sweep_test(tmp_path, batch_size=64, devices=1)
    sizes = [64, 64, 64, 64, 44]  # 300 items
    for row in rows:
        assert row.eval_examples == sum(sizes[b] for b in subset(row.seed, 5)[:3])
        assert math.isfinite(row.value)  # unbiased, not clipped: an estimate may leave [0, 1] slightly
    assert read_sweep_csv(tmp_path / "robustness" / "sweep_test_epoch000.csv") == rows


@pytest.mark.slow  # two spawned processes
def test_ddp_sweeps_the_same_units_as_one_process_with_twice_the_batch(tmp_path):
    """Under DDP, unit b is batch b of every process: 2 processes × 32 items = one process's batch of 64."""
    single = sweep_test(tmp_path / "single", batch_size=64, devices=1)
    ddp = sweep_test(tmp_path / "ddp", batch_size=32, devices=2, strategy="ddp_spawn")
    assert [(r.level, r.trial, r.seed, r.eval_examples) for r in ddp] == [
        (r.level, r.trial, r.seed, r.eval_examples) for r in single
    ]
    assert [r.value for r in ddp] == pytest.approx([r.value for r in single], rel=1e-12)
