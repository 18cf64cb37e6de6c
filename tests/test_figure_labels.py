"""Figures explain themselves: human metric names, titles that say what is shown, legends for line styles and
bands, distinct model colours, and the comparison's panels say what "no cross-over" means."""

from __future__ import annotations

import math

import pytest

from cognitive_reserve.crossover import find_crossover
from cognitive_reserve.layerwise import GroupSummary, group_levels_figure
from cognitive_reserve.plots import interval_handles, metric_label, model_style, style_handles, trial_band_label
from cognitive_reserve.sensitivity import EpochSummary, sensitivity_heatmap
from cognitive_reserve.stats import LevelSummary, summarize
from cognitive_reserve.sweep import SweepRow
from run_outputs.sweeps import sweep_title
from run_reports.compare import crossover_text


@pytest.mark.parametrize(
    ("key", "label"),
    [("bits_per_byte_en", "bits per byte (en)"), ("perplexity_el", "perplexity (el)"), ("val/accuracy", "accuracy"),
     ("mse_task_vector", "MSE (task vector)"), ("mcc", "Matthews correlation"), ("sigma_max", "sigma max")],
)  # fmt: skip
def test_metric_keys_get_human_names(key, label):
    assert metric_label(key) == label


def rows(models: int = 2, expected: float | None = 0.5, broken: bool = False, trials: int = 10) -> list[SweepRow]:
    return [
        SweepRow(f"m{m}", m, "random_deletion", level, t, t, "mse_label",
                 math.nan if broken and level else 0.1 * m + level + 0.01 * t, expected=expected, stage="fit", epoch=0)
        for m in range(1, models + 1) for level in (0.0, 0.5) for t in range(trials)
    ]  # fmt: skip


def test_style_legend_names_solid_dashed_and_the_band_with_its_trial_count():
    labels = [handle.get_label() for handle in style_handles(summarize(rows()))]
    assert labels == [
        "measured: mean over trials",
        "closed form (expected value)",
        "95% CI of the mean over up to 10 trials (bootstrap-t, within the metric's range)",
    ]
    few = [h.get_label() for h in style_handles(summarize(rows(trials=3)))]
    assert few[-1] == "hollow: no honest 95% CI (too few trials, or unbounded)"
    assert "closed form (expected value)" not in [h.get_label() for h in style_handles(summarize(rows(expected=None)))]
    assert "a trial gave a non-finite value" in [h.get_label() for h in style_handles(summarize(rows(broken=True)))]


def test_the_band_names_clopper_pearson_where_every_trial_agreed_and_the_hollow_marker_where_no_interval():
    tied = [SweepRow("m", 1, "random_deletion", 0.5, t, t, "accuracy", 1.0, stage="fit", epoch=0) for t in range(3)]
    spread = [
        SweepRow("m", 1, "random_deletion", 0.9, t, t, "accuracy", 0.5 + 0.1 * t, stage="fit", epoch=0)
        for t in range(3)
    ]
    summaries = summarize(tied + spread)
    assert [s.method for s in summaries] == ["clopper-pearson", "none"]
    labels = [h.get_label() for h in interval_handles(summaries, trial_band_label(summaries))]
    assert [" ".join(label.split()) for label in labels] == [
        "95% CI of the mean over up to 3 trials (Clopper–Pearson where all trials tied, within the metric's range)",
        "hollow: no honest 95% CI (too few trials, or unbounded)",
    ]
    both = summarize(rows()) + summaries
    assert "(bootstrap-t, Clopper–Pearson where all trials tied, " in " ".join(trial_band_label(both).split())


def test_twelve_models_get_twelve_distinct_styles_and_neighbours_never_share_a_colour():
    styles = [tuple(model_style(i).values()) for i in range(12)]
    assert len(set(styles)) == 12
    assert all(styles[i][0] != styles[i + 1][0] for i in range(11))


def test_sweep_title_says_when_what_and_how_many_models():
    assert sweep_title("sweep_fit_epoch000", summarize(rows(models=12))) == (
        "Damage after fit (weights of epoch 0): MSE (label) of 12 models"
    )
    assert sweep_title("sweep_test_epoch037", summarize(rows(models=1))).startswith(
        "Damage of the tested checkpoint (epoch 37): MSE (label) of 1 model"
    )


def test_a_panel_without_cross_over_says_so_in_words():
    both = rows()
    result = find_crossover([r for r in both if r.model == "m1"], [r for r in both if r.model == "m2"],
                            "random_deletion", "mse_label")  # fmt: skip
    assert result.status == "none"
    assert crossover_text(result).startswith("no cross-over: m2\nnever better up to 0.5\n95%: ")


def test_sweep_title_of_a_sweep_named_by_its_step():
    assert sweep_title("sweep_train_epoch002_step000300", summarize(rows(models=1))).startswith(
        "Damage during training (epoch 2, step 300): MSE (label) of 1 model"
    )


def noisy_history(clean: float, changes: dict[float, float], moments) -> list[EpochSummary]:
    """Sweeps of one model at ``moments`` ((epoch, step)): ``clean`` at level 0, ``clean + change`` elsewhere."""
    return [
        EpochSummary(epoch, LevelSummary("lm", 1, "magnitude_pruning", level, "bits_per_byte_en", 1, 0,
                                         clean + change, 0.0, clean + change, clean + change, None), step)
        for epoch, step in moments for level, change in {0.0: 0.0, **changes}.items()
    ]  # fmt: skip


def test_sensitivity_heatmap_states_metric_change_and_range_and_keeps_noise_pale():
    """The issue's figure: bits per byte 2.015 ± 0.0008 across sweeps was stretched over the whole colour map, its
    bar labelled '+2.015' with ticks 0.0000–0.0008, titled 'mean per epoch'."""
    history = noisy_history(2.015, {0.2: 0.0008, 0.4: 0.0004}, [(0, 100), (0, 200), (1, 300)])
    fig = sensitivity_heatmap(history)
    ax, bar = fig.axes[0], fig.axes[1]
    (image,) = ax.get_images()
    assert bar.get_ylabel().startswith("bits per byte (en) − undamaged")
    assert bar.get_ylabel().endswith("scale ±0.101 (5% of 2.015)")
    fig.canvas.draw()
    assert bar.yaxis.get_offset_text().get_text() == ""  # no "+2.015" offset
    assert image.norm.vmin == pytest.approx(-0.05 * 2.015) and image.norm.vmax == pytest.approx(0.05 * 2.015)
    centre, noisy = image.cmap(image.norm(0.0)), image.cmap(image.norm(0.0008))
    assert max(abs(a - b) for a, b in zip(centre, noisy, strict=True)) < 0.02  # noise stays (almost) white
    assert ax.get_xlabel() == "training step"  # two sweeps share epoch 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "200", "300"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.4", "0.2", "0"]


def test_sensitivity_heatmap_gives_real_damage_full_contrast_over_epochs():
    history = noisy_history(2.0, {0.3: 0.05, 0.6: 1.5}, [(0, 10), (1, 20)])
    fig = sensitivity_heatmap(history)
    ax, bar = fig.axes[0], fig.axes[1]
    (image,) = ax.get_images()
    assert image.norm.vmax == pytest.approx(1.5) and bar.get_ylabel().endswith("scale ±1.5 (largest)")
    assert ax.get_xlabel().startswith("training epoch")
    assert image.get_array()[0].tolist() == pytest.approx([1.5, 1.5])  # top row: the largest level, minus clean


def test_group_images_keep_noise_pale_too():
    summaries = [
        GroupSummary(group, LevelSummary("lm", 1, "magnitude_pruning", level, "bits_per_byte_en", 1, 0, mean, 0.0,
                                         mean, mean, None))
        for group, level, mean in (("", 0.0, 2.015), ("h.0", 0.6, 2.0158), ("h.1", 0.6, 2.0150))
    ]  # fmt: skip
    fig = group_levels_figure(summaries)
    (image,) = fig.axes[0].get_images()
    assert image.norm.vmax == pytest.approx(0.05 * 2.015)
    assert fig.axes[1].get_ylabel().endswith("scale ±0.101 (5% of 2.015)")
