"""Property-based: every invalid config value is rejected with a one-line error naming its field;
every valid one is accepted (perturbations, sweep grids, and every declared field of every class).

The oracle of a declared field (``cognitive_reserve.fields``) comes from its declaration: its type (bool,
int, float, str, Literal, optional) and bounds say which values are valid, and the strategies
draw values at and next to those bounds, of every other type, and at random. Each example builds
the class for real from the declared defaults with that one field changed. Fields with their own
``check`` (lists, mappings, regular expressions) keep hand-written tests below and in
``test_config_properties_models.py``.
"""

from __future__ import annotations

import math
import operator
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import GPT2Config

from callbacks import PerturbationSweep, SpectralMonitor
from cognitive_reserve import PERTURBATIONS, ConfigError, GaussianNoise, MagnitudePruning, RandomDeletion, SweepGrid
from cognitive_reserve.fields import DECLARED, Declaration, declarations
from config_reference import config_classes
from datamodules import DigitsTasksDataModule, MnistTasksDataModule
from datamodules.cifar10 import Cifar10TasksDataModule
from datamodules.corpus import TextSource
from datamodules.encoded_tasks import EncodedTasksDataModule
from datamodules.glue import GlueDataModule
from datamodules.label_pairs import LabelPairTasksDataModule
from datamodules.mnist import RAW_FILES
from datamodules.newsgroups import NewsgroupsTasksDataModule
from datamodules.text import TextCorpusDataModule
from lightning_modules.gpt2_glue import GPT2GlueClassifier
from lightning_modules.gpt2_lm import GPT2ConfigFields, GPT2LanguageModel
from tests.helpers.encoder_fixtures import tiny_fixtures
from tests.helpers.glue_fixtures import save_hf_model

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


# ---- every declared field: the oracle from its declaration ---------------------------------------

#: Arguments a class needs besides its declared defaults (required fields, local files).
NEEDS = {
    PerturbationSweep: lambda local: {"perturbations": {"gaussian_noise": {"levels": [0.1]}}},
    MnistTasksDataModule: lambda local: {"root": local["mnist"]},
    SpectralMonitor: lambda local: {"spectrum_every_n_steps": 1},  # top_k and histogram need it (checked in __init__)
    GPT2GlueClassifier: lambda local: {"task": "rte", "init_from": local["hf"]},
    GlueDataModule: lambda local: {"task": "sst2"},
    GPT2LanguageModel: lambda local: {"gpt2_config": TINY_GPT2, "tokenizer": "train"},
    TextCorpusDataModule: lambda local: {"corpora": corpora(local["text"]), "train_tokens": 64, "block_size": 16},
    TextSource: lambda local: {"file": local["text"]},
    Cifar10TasksDataModule: lambda local: {"root": local["cifar"], "download": False, "check_md5": False},
    NewsgroupsTasksDataModule: lambda local: {
        "source": "directory",
        "root": local["newsgroups"],
        "encoder": local["bert"],
        **FEW_TASKS,
    },
}
FEW_TASKS = {"task_grid": [1, 2], "train_examples": 10}  # the tiny newsgroups fixture has 3 classes
TINY_GPT2 = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 16, "vocab_size": 300}
COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}
#: Values of every type at once: each field must refuse those its type or range excludes.
ODD = [None, True, False, "", "x", "val", [], [1], {}, 0, 1, -1, 2, 0.5, 1.5, -0.0, math.nan, math.inf, -math.inf]


def accepts(d: Declaration, value: Any, arguments: dict[str, Any]) -> bool:
    """Whether ``value`` is valid for the declared field ``d`` (the other fields as in ``arguments``)."""
    if value is None:
        return d.optional
    if isinstance(d.kind, tuple):
        return type(value) is str and value in d.kind
    if d.kind is bool:
        return type(value) is bool
    if d.kind is str:
        return type(value) is str and value != ""
    if type(value) not in ((int,) if d.kind is int else (int, float)) or not math.isfinite(value):
        return False
    return all(COMPARE[name](value, bound) for name, bound in d.bounds(arguments).items() if bound is not None)


def candidates(d: Declaration, arguments: dict[str, Any]) -> st.SearchStrategy:
    """Values at and next to ``d``'s bounds and choices, of other types, and at random."""
    near = [b + step for b in d.bounds(arguments).values() if b is not None for step in (-1, -1e-9, 0, 1e-9, 1)]
    near += [int(b) + step for b in d.bounds(arguments).values() if b is not None for step in (-1, 0, 1)]
    choices = list(d.kind) + [c.upper() for c in d.kind] if isinstance(d.kind, tuple) else []
    return st.one_of(st.sampled_from(ODD + near + choices), numbers, st.text(max_size=4), st.just(d.default))


def corpora(file: str, **english_train: Any) -> dict[str, Any]:
    """One language whose three sources read ``file``; ``english_train`` adds to its train source."""
    return {"en": {"train": {"file": file, **english_train}, "validation": {"file": file}, "test": {"file": file}}}


#: How to build a class whose own constructor cannot be called or does not check its fields.
BUILDERS = {
    LabelPairTasksDataModule: lambda local: DigitsTasksDataModule,
    TextSource: lambda local: lambda **source: TextCorpusDataModule(corpora(**source), 64, block_size=16),
    EncodedTasksDataModule: lambda local: partial(Cifar10TasksDataModule, **NEEDS[Cifar10TasksDataModule](local)),
}
PREFIXES = {TextSource: "data.corpora.en.train"}


def builder(cls: type, local: dict[str, str]) -> Any:
    return BUILDERS[cls](local) if cls in BUILDERS else cls


def path(d: Declaration) -> str:
    """The field name an error about ``d`` carries."""
    return f"{PREFIXES.get(d.owner, d.prefix)}.{d.name}"


def base_arguments(cls: type, local: dict[str, str]) -> dict[str, Any]:
    """The declared defaults of ``cls`` and its declared bases, and what ``NEEDS`` adds."""
    arguments = {}
    for owner in reversed(cls.__mro__):
        if owner in DECLARED:
            arguments.update({d.name: d.default for d in declarations(owner) if not d.required})
            arguments.update(NEEDS.get(owner, lambda local: {})(local))
    return arguments


#: Every declared class of callbacks, datamodules and lightning_modules: a new one is tried without an edit here
#: (unless it needs arguments besides its declared defaults: NEEDS).
CLASSES = config_classes()
#: Plain fields whose validity depends on another field: tried by hand-written tests.
ACROSS = {
    (TextSource, "hub"),  # exactly one of file and hub: test_config_properties_models.py::test_text_sources
    # their files, read at construction (and true needs the official ones): test_config_properties_models.py
    (Cifar10TasksDataModule, "check_md5"), (Cifar10TasksDataModule, "root"), (NewsgroupsTasksDataModule, "root"),
}  # fmt: skip
PLAIN = [
    (cls, d)
    for cls in CLASSES
    for d in declarations(cls)
    if d.checked and d.field.check is None and (cls, d.name) not in ACROSS
]


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> dict[str, str]:
    """Tiny local inputs some constructors read: MNIST's raw files (empty), a Hugging Face GPT-2, a text,
    CIFAR-10 and 20 Newsgroups in their layouts, a tiny BERT."""
    mnist = tmp_path_factory.mktemp("mnist")
    (mnist / "MNIST" / "raw").mkdir(parents=True)
    for name in RAW_FILES:
        (mnist / "MNIST" / "raw" / name).touch()
    text = tmp_path_factory.mktemp("text") / "en.txt"
    text.write_text("first document.\n\nsecond one.\n", "utf-8")
    encoders = tiny_fixtures(tmp_path_factory.mktemp("encoders"))
    return {
        "mnist": str(mnist), "hf": str(save_hf_model(tmp_path_factory.mktemp("hf-gpt2"))), "text": str(text),
        "cifar": str(encoders.cifar_root), "newsgroups": str(encoders.newsgroups_root), "bert": str(encoders.bert),
    }  # fmt: skip


def refused_fields(d: Declaration, config: dict[str, Any]) -> set[str]:
    """The fields ``config`` makes invalid when it changes ``d``: ``d`` itself, else those bounded by it."""
    if not accepts(d, config[d.name], config):
        return {path(d)}
    bounded = [e for e in declarations(d.owner) if d.name in (e.field.ge, e.field.gt, e.field.le, e.field.lt)]
    return {path(e) for e in bounded if not accepts(e, config[e.name], config)}


@pytest.mark.parametrize(("cls", "d"), PLAIN, ids=[f"{cls.__name__}.{d.name}" for cls, d in PLAIN])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_declared_field_refuses_invalid_and_accepts_valid_values(local, cls, d, data):
    config = base_arguments(cls, local)
    config[d.name] = data.draw(candidates(d, config))
    err = outcome(lambda: builder(cls, local)(**config))
    refused = refused_fields(d, config)
    assert (err is None) == (not refused), (path(d), config[d.name], err)
    assert err is None or err.field in refused


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


@pytest.mark.parametrize("spec", [None, "levels", {"trials": 3}, {"levels": "0.1"}])
def test_malformed_perturbation_spec(spec):
    err = outcome(lambda: PerturbationSweep({"gaussian_noise": spec}))
    assert err is not None and err.field.startswith("PerturbationSweep.perturbations.gaussian_noise")


@pytest.mark.parametrize("reason", ["bad\nvalue", "Invalid device string: '\n'", "  spaced \t out  "])
def test_error_message_stays_one_line_when_the_reason_spans_lines(reason):
    message = str(ConfigError("data.device", "\n", reason))
    assert "\n" not in message and message.startswith("data.device='\\n': ")


def test_gpt2_config_defaults_are_hugging_faces():
    defaults = GPT2Config()
    for d in declarations(GPT2ConfigFields):
        assert getattr(defaults, d.name) == d.default, d.name


@pytest.mark.parametrize("field", ["n_layer", "resid_pdrop", "layer_norm_epsilon", "n_inner"])
def test_the_language_model_checks_gpt2_config_with_its_declaration(field):
    err = outcome(lambda: GPT2LanguageModel(gpt2_config={**TINY_GPT2, field: -1}, tokenizer="train"))
    assert err is not None and err.field == f"model.gpt2_config.{field}"
