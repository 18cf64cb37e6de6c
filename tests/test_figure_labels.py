"""Figures explain themselves: human metric names, titles that say what is shown, legends for line styles and
bands, distinct model colours, and the comparison's panels say what "no cross-over" means."""

from __future__ import annotations

import math

import pytest

from cognitive_reserve.crossover import find_crossover
from cognitive_reserve.plots import metric_label, model_style, style_handles
from cognitive_reserve.stats import summarize
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
                            "random_deletion", "mse_label", n_boot=10)  # fmt: skip
    assert result.status == "none"
    assert crossover_text(result) == "no cross-over: m2\nnever better up to 0.5"
