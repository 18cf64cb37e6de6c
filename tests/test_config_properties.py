"""Property-based: every invalid config value is rejected with a one-line error naming its field;
every valid one is accepted (perturbations, sweep grids, the sweep callback, data and model)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks import PerturbationSweep, SpectralMonitor, WeightNorms
from datamodules import DigitsTasksDataModule
from lightning_modules import LinearMultitaskRegression
from robustness import PERTURBATIONS, ConfigError, GaussianNoise, MagnitudePruning, RandomDeletion, SweepGrid

EXAMPLES = settings(max_examples=150, deadline=None)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6))
anything = st.one_of(numbers, st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))


def outcome(build) -> ConfigError | None:
    """None if ``build()`` accepts, else its ConfigError (after checking the message is one line)."""
    try:
        build()
    except ConfigError as err:
        assert "\n" not in str(err) and str(err).startswith(f"{err.field}=")
        return err
    return None


def finite(x) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float) and math.isfinite(x)


@EXAMPLES
@given(numbers)
def test_gaussian_noise_std(std):
    err = outcome(lambda: GaussianNoise(std))
    assert (err is None) == (finite(std) and std >= 0)
    assert err is None or err.field == "gaussian_noise.std"


@EXAMPLES
@given(numbers, st.sampled_from([RandomDeletion, MagnitudePruning]))
def test_probabilities(p, cls):
    err = outcome(lambda: cls(p))
    assert (err is None) == (finite(p) and 0 <= p <= 1)
    assert err is None or err.field == f"{cls.name}.p"


@EXAMPLES
@given(st.one_of(st.sampled_from(sorted(PERTURBATIONS)), st.text(max_size=12)), st.integers(-3, 50))
def test_grid_names_and_trials(name, trials):
    err = outcome(lambda: SweepGrid(name, [0.0, 0.5], trials))
    assert (err is None) == (name in PERTURBATIONS and trials >= 1)


@EXAMPLES
@given(st.lists(numbers, max_size=4))
def test_sweep_callback_levels(levels):
    err = outcome(lambda: PerturbationSweep({"random_deletion": {"levels": levels, "trials": 3}}))
    assert (err is None) == (bool(levels) and all(finite(x) and 0 <= x <= 1 for x in levels))
    assert err is None or err.field.startswith("PerturbationSweep.perturbations.random_deletion.")


@EXAMPLES
@given(anything, anything, anything)
def test_sweep_callback_options(every_n_epochs, max_eval_samples, split):
    options = {"every_n_epochs": every_n_epochs, "max_eval_samples": max_eval_samples, "split": split}
    err = outcome(lambda: PerturbationSweep({"gaussian_noise": {"levels": [0.1]}}, **options))
    valid = (
        isinstance(every_n_epochs, int) and not isinstance(every_n_epochs, bool) and every_n_epochs >= 0
        and (max_eval_samples is None or (type(max_eval_samples) is int and max_eval_samples >= 1))
        and split in ("train", "val", "test")
    )  # fmt: skip
    assert (err is None) == valid


@EXAMPLES
@given(st.lists(st.integers(-2, 60), max_size=5), st.integers(-5, 500), numbers, st.integers(-2, 2000))
def test_label_pair_data(task_grid, train_examples, val_fraction, batch_size):
    err = outcome(
        lambda: DigitsTasksDataModule(
            task_grid=task_grid, train_examples=train_examples, val_fraction=val_fraction, batch_size=batch_size
        )
    )
    valid = (
        bool(task_grid) and len(set(task_grid)) == len(task_grid) and all(1 <= t <= 45 for t in task_grid)
        and train_examples >= max(task_grid) and finite(val_fraction) and 0 < val_fraction <= 0.9
        and batch_size >= 1
    )  # fmt: skip
    assert (err is None) == valid
    assert err is None or err.field.startswith("data.")


@EXAMPLES
@given(anything, st.sampled_from(["svd", "sgd", "adam", ""]), numbers, numbers, numbers)
def test_linear_model(k, solver, ridge, lr, weight_decay):
    err = outcome(lambda: LinearMultitaskRegression(k=k, solver=solver, ridge=ridge, lr=lr, weight_decay=weight_decay))
    valid = (
        type(k) is int and k >= 1 and solver in ("svd", "sgd") and finite(ridge) and ridge > 0
        and finite(lr) and lr > 0 and finite(weight_decay) and weight_decay >= 0
    )  # fmt: skip
    assert (err is None) == valid
    assert err is None or err.field.startswith("model.")


@pytest.mark.parametrize("spec", [None, "levels", {"trials": 3}, {"levels": "0.1"}])
def test_malformed_perturbation_spec(spec):
    err = outcome(lambda: PerturbationSweep({"gaussian_noise": spec}))
    assert err is not None and err.field.startswith("PerturbationSweep.perturbations.gaussian_noise")


@pytest.mark.parametrize("reason", ["bad\nvalue", "Invalid device string: '\n'", "  spaced \t out  "])
def test_error_message_stays_one_line_when_the_reason_spans_lines(reason):
    message = str(ConfigError("data.device", "\n", reason))
    assert "\n" not in message and message.startswith("data.device='\\n': ")


def noise_sweep(**switch) -> PerturbationSweep:
    return PerturbationSweep({"gaussian_noise": {"levels": [0.1]}}, **switch)


SWITCHES = [
    ("PerturbationSweep.at_train_end", lambda v: noise_sweep(at_train_end=v)),
    ("PerturbationSweep.at_test", lambda v: noise_sweep(at_test=v)),
    ("PerturbationSweep.progress", lambda v: noise_sweep(progress=v)),
    ("PerturbationSweep.autocast_bf16", lambda v: noise_sweep(autocast_bf16=v)),
    ("WeightNorms.at_epoch_end", lambda v: WeightNorms(at_epoch_end=v)),
    ("SpectralMonitor.histogram", lambda v: SpectralMonitor(histogram=v, spectrum_every_n_steps=1)),
    ("data.standardize", lambda v: DigitsTasksDataModule(standardize=v)),
    ("data.add_bias", lambda v: DigitsTasksDataModule(add_bias=v)),
]


@pytest.mark.parametrize(("field", "build"), SWITCHES, ids=[field for field, _ in SWITCHES])
@given(anything)
@settings(max_examples=20, deadline=None)
def test_switches_take_only_true_or_false(field, build, value):
    err = outcome(lambda: build(value))
    assert (err is None) == isinstance(value, bool)
    assert err is None or err.field == field
