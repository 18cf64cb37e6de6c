"""Property-based, for the config fields whose oracle cannot come from their declaration alone:
fields with their own check (lists, mappings, regular expressions, files, model names) and rules
across fields (GPT-2, GLUE, frozen-encoder and label-pair data, the sweep callback). Each is
refused at construction with a one-line ``ConfigError`` naming it when invalid, accepted when valid.
Every plain field (boolean, integer, number, string, choice) is tried by ``test_config_properties.py``
with the oracle derived from its declaration (``cognitive_reserve.fields``).

Each example starts from a valid configuration (every listed field drawn from its valid values)
and sets one field to an arbitrary value: valid or not, of any type. Every field gets its own
examples, and every field is also set to each of a fixed list of boundary values. The expected
verdict is written out here. Models and data are built for real from tiny local fixtures; nothing
is downloaded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torchvision
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from transformers.activations import ACT2FN

from callbacks.perturbation_sweep import PerturbationSweep
from cognitive_reserve.errors import ConfigError
from datamodules.cifar10 import Cifar10TasksDataModule
from datamodules.digits import DigitsTasksDataModule
from datamodules.glue import GlueDataModule
from datamodules.glue_tasks import GLUE_TASKS
from datamodules.newsgroups import NewsgroupsTasksDataModule
from datamodules.text import TextCorpusDataModule
from lightning_modules.gpt2_glue import GPT2GlueClassifier
from lightning_modules.gpt2_lm import GPT2LanguageModel
from tests.helpers.encoder_fixtures import tiny_fixtures
from tests.helpers.glue_fixtures import save_hf_model

#: Hypothesis examples per field (each a valid configuration with that field set to any value).
PER_FIELD = settings(max_examples=25, deadline=None)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6))
junk = st.one_of(
    st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)  # fmt: skip
#: Values at or next to the bounds of the documented ranges.
EDGES = [0, 1, 2, 7, 8, 256, 257, -1, 0.0, 1.0, -0.0, 0.5, 0.999, 1.0000001, -1e-9, math.nan, math.inf, -math.inf,
         "", " ", "0", "(", None, True, False, [], {}]  # fmt: skip
anything = st.one_of(numbers, st.sampled_from(EDGES), junk)
#: Arbitrary values for sizes that, when valid, still build a small model.
small_sizes = st.one_of(st.integers(-3, 700), st.floats(allow_nan=True), junk)
PATTERNS = st.sampled_from(["attn", "c_attn|c_proj", r"h\.\d+\.attn", ["attn"], ["attn", "mlp"]])
WILD_PATTERNS = st.one_of(anything, st.sampled_from(["", "(", "[a-", [], ["("], ["attn", ""], ("attn",), [3]]))


# ---- oracles: the documented ranges -------------------------------------------------------------


def is_int(x: Any, minimum: int | None = None) -> bool:
    return type(x) is int and (minimum is None or x >= minimum)


def is_number(x: Any, low: float | None = None, high: float | None = None, low_open=False, high_open=False) -> bool:
    if type(x) not in (int, float) or not math.isfinite(x):
        return False
    above = low is None or (x > low if low_open else x >= low)
    below = high is None or (x < high if high_open else x <= high)
    return above and below


def is_text(x: Any) -> bool:
    return type(x) is str and x != ""


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda x: x is None or check(x)


def is_grouping(x: Any) -> bool:
    """``per_block``, ``per_matrix`` or a valid regular expression with a capture group."""
    if x in ("per_block", "per_matrix"):
        return True
    if not is_text(x):
        return False
    try:
        return re.compile(x).groups >= 1
    except re.error:
        return False


def are_patterns(x: Any) -> bool:
    patterns = [x] if isinstance(x, str) else x
    if not isinstance(patterns, list | tuple) or not patterns or not all(is_text(p) for p in patterns):
        return False
    try:
        [re.compile(p) for p in patterns]
    except re.error:
        return False
    return True


# ---- one field off a valid configuration ---------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A config field: its valid values, arbitrary values, the oracle, and the fields an error may name."""

    valid: st.SearchStrategy
    ok: Callable[[Any, dict[str, Any]], bool]
    wild: st.SearchStrategy = anything
    named: tuple[str, ...] = ()


def simple(valid: st.SearchStrategy, ok: Callable[[Any], bool], wild: st.SearchStrategy = anything) -> Field:
    return Field(valid, lambda value, config: ok(value), wild)


@st.composite
def valid_config(draw, fields: dict[str, Field]) -> dict[str, Any]:
    return {name: draw(field.valid) for name, field in fields.items()}


@st.composite
def one_field_off(draw, fields: dict[str, Field], name: str) -> dict[str, Any]:
    """A valid configuration with field ``name`` set to a valid or arbitrary value."""
    config = draw(valid_config(fields))
    config[name] = draw(st.one_of(fields[name].valid, fields[name].wild))
    return config


def check_refusal(build: Callable[[], Any], fields: Collection[str], what: str, below: bool = True) -> None:
    """``build()`` is accepted iff ``fields`` is empty, else refused with one line naming one of
    ``fields`` (or, with ``below``, a field inside one of them)."""
    try:
        build()
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message and message.startswith(f"{err.field}="), message
        assert fields, f"valid {what} rejected: {message}"
        inside = below and any(err.field.startswith(field + ".") for field in fields)
        assert err.field in fields or inside, (message, fields)
        return
    assert not fields, f"invalid {what} accepted"


def check_verdict(build: Callable[..., Any], fields: dict[str, Field], name: str, config: dict, prefix: str) -> None:
    """``build(**config)`` accepts iff field ``name`` is valid; else one line naming that field."""
    field = fields[name]
    named = [] if field.ok(config[name], config) else [prefix + n for n in (name, *field.named)]
    check_refusal(lambda: build(**config), named, f"{name}={config[name]!r}")


# ---- fixtures (module scope: hypothesis runs many examples per test) -----------------------------


@pytest.fixture(scope="module")
def hf_directory(tmp_path_factory) -> Path:
    return save_hf_model(tmp_path_factory.mktemp("hf-gpt2"))


@pytest.fixture(scope="module")
def text_files(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("text")
    files = {}
    for language in ("en", "el"):
        for split in ("train", "validation", "test"):
            path = directory / f"{language}.{split}.txt"
            path.write_text(f"first {language} document.\n\nsecond one.\n", "utf-8")
            files[f"{language}.{split}"] = str(path)
    (directory / "empty.txt").write_text("\n \n", "utf-8")
    files["empty"] = str(directory / "empty.txt")
    files["missing"] = str(directory / "missing.txt")
    return files


@pytest.fixture(scope="module")
def encoder_fixtures(tmp_path_factory):
    return tiny_fixtures(tmp_path_factory.mktemp("encoders"))


# ---- GPT2LanguageModel --------------------------------------------------------------------------

TINY_GPT2 = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 16, "vocab_size": 300}
unit = st.floats(0, 1)
beta = st.floats(0, 0.999)

# the fields with their own check or a rule across fields (the others: test_config_properties.py)
LM_FIELDS = {
    "betas": simple(
        st.tuples(beta, beta),
        lambda x: isinstance(x, list | tuple) and len(x) == 2 and all(is_number(b, 0, 1, high_open=True) for b in x),
        st.one_of(st.lists(numbers, max_size=3), st.tuples(numbers, numbers), anything),
    ),
    "targets": simple(PATTERNS, are_patterns, WILD_PATTERNS),
}


GPT2_CONFIG_FIELDS = {
    "n_head": Field(
        st.sampled_from([1, 2, 4]), lambda x, c: is_int(x, 1) and c["n_embd"] % x == 0, small_sizes, ("n_embd",)
    ),
    "n_embd": Field(st.sampled_from([16, 32]), lambda x, c: is_int(x, 1) and x % c["n_head"] == 0, small_sizes),
    "vocab_size": simple(st.integers(257, 600), lambda x: is_int(x, 257), small_sizes),  # a trained BPE needs 257
    "n_layer": simple(st.integers(1, 2), lambda x: is_int(x, 1), st.one_of(st.integers(-3, 4), small_sizes)),
    "n_positions": simple(st.integers(1, 64), lambda x: is_int(x, 1), small_sizes),
    "activation_function": simple(
        st.sampled_from(["gelu_new", "relu", "gelu"]),
        lambda x: isinstance(x, str) and x in ACT2FN,
        st.one_of(st.text(max_size=8), anything),
    ),
}


@pytest.mark.parametrize(
    ("gpt2_config", "field"),
    [
        ({**TINY_GPT2, "n_layers": 4}, "model.gpt2_config.n_layers"),  # a typo must not fall back to 12 layers
        ([2, 2, 16], "model.gpt2_config"),
        ({**TINY_GPT2, "use_cache": "maybe"}, "model.gpt2_config"),  # HF's own type check, as one line
    ],
)
def test_gpt2_config_shape(gpt2_config, field):
    with pytest.raises(ConfigError) as err:
        GPT2LanguageModel(gpt2_config=gpt2_config, tokenizer="train")
    assert err.value.field == field and "\n" not in str(err.value)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from([None, "hf", "missing", "", 3]),
    st.sampled_from([None, "tiny"]),
    st.sampled_from([None, "missing.ckpt", "", 3]),
    st.sampled_from([None, "train", "hf", "missing", ""]),
)
def test_language_model_weight_and_tokenizer_sources(hf_directory, pretrained, gpt2_config, init_from, tokenizer):
    where = {
        "hf": str(hf_directory), "missing": str(hf_directory / "missing"), "tiny": {**TINY_GPT2, "vocab_size": 320},
        "missing.ckpt": str(hf_directory / "missing.ckpt"),
    }  # fmt: skip
    resolve = lambda value: where.get(value, value) if isinstance(value, str) else value  # noqa: E731
    arguments = {"pretrained": pretrained, "gpt2_config": gpt2_config, "init_from": init_from, "tokenizer": tokenizer}
    bad = set()
    if sum(value is not None for value in (pretrained, gpt2_config, init_from)) != 1:
        bad.add("model.pretrained/gpt2_config/init_from")
    for name in ("pretrained", "init_from", "tokenizer"):
        if arguments[name] is not None and arguments[name] not in ("hf", "train", "tiny"):
            bad.add(f"model.{name}")  # empty, not a string, or nothing there
    if gpt2_config is not None and tokenizer is None:
        bad.add("model.tokenizer")  # a model from a config has no tokenizer to keep
    build = lambda: GPT2LanguageModel(**{key: resolve(value) for key, value in arguments.items()})  # noqa: E731
    check_refusal(build, bad, str(arguments), below=False)


# ---- TextCorpusDataModule ----------------------------------------------------------------------

positive = st.floats(1e-3, 1e3)


def is_share(x: Any) -> bool:
    return is_number(x, 0, low_open=True)


TEXT_FIELDS = {  # fields across fields or with their own check (the others: test_config_properties.py)
    "train_tokens": Field(st.integers(64, 10**7), lambda x, c: is_int(x, c["block_size"])),
    "block_size": Field(
        st.integers(1, 64), lambda x, c: is_int(x, 1) and x <= c["train_tokens"], anything, ("train_tokens",)
    ),
    "language_ratio": simple(
        st.one_of(st.none(), st.fixed_dictionaries({"en": positive, "el": positive})),
        lambda x: x is None or (isinstance(x, Mapping) and set(x) == {"en", "el"} and all(map(is_share, x.values()))),
        st.one_of(anything, st.fixed_dictionaries({"en": numbers, "el": anything}), st.just({"en": 1.0})),
    ),
}


def corpora(files: dict[str, str]) -> dict[str, dict[str, dict[str, str]]]:
    return {lang: {split: {"file": files[f"{lang}.{split}"]} for split in ("train", "validation", "test")}
            for lang in ("en", "el")}  # fmt: skip


#: ``TextSource`` settings: (source, valid at construction?, field the error names below the split).
SOURCES = [
    ({"file": "en.train"}, True, ""),
    ({"file": "en.train", "skip": 1, "take": 1}, True, ""),
    ({"hub": "json", "data_files": "x.jsonl", "streaming": True}, True, ""),  # hub data is read in prepare_data
    ({"hub": "wikimedia/wikipedia", "name": "20231101.el", "column": "text"}, True, ""),
    ({"file": "missing"}, False, ".file"),
    ({"file": "empty"}, False, ".file"),
    ({}, False, ""),
    ({"file": "en.train", "hub": "json"}, False, ""),
    ({"file": ""}, False, ".file"),
    ({"file": 3}, False, ".file"),
    ({"hub": "json", "name": ""}, False, ".name"),
    ({"file": "en.train", "skip": -1}, False, ".skip"),
    ({"file": "en.train", "skip": 1.5}, False, ".skip"),
    ({"file": "en.train", "take": 0}, False, ".take"),
    ({"file": "en.train", "split": ""}, False, ".split"),
    ({"file": "en.train", "column": None}, False, ".column"),
    ({"file": "en.train", "streaming": "yes"}, False, ".streaming"),
    ({"file": "en.train", "colum": "text"}, False, ".colum"),  # a typo is not silently ignored
    ("en.train", False, ""),
]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(range(len(SOURCES))), st.sampled_from(["train", "validation", "test"]), st.booleans())
def test_text_sources(text_files, source_index, split, bilingual):
    source, valid, suffix = SOURCES[source_index]
    if isinstance(source, dict):
        source = {key: text_files.get(value, value) if key == "file" else value for key, value in source.items()}
    config = {language: corpus for language, corpus in corpora(text_files).items() if bilingual or language == "en"}
    config["en"][split] = source
    named = [] if valid else [f"data.corpora.en.{split}{suffix}"]
    check_refusal(lambda: TextCorpusDataModule(config, train_tokens=64, block_size=16), named, str(source), below=False)


def test_a_missing_column_names_its_source(text_files, tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text('{"body": "a document without a text column"}\n', "utf-8")
    config = corpora(text_files)
    config["el"]["validation"] = {"hub": "json", "data_files": str(records), "column": "text"}
    datamodule = TextCorpusDataModule(config, train_tokens=64, block_size=16, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigError) as err:
        next(datamodule.documents("el", "validation"))
    expected = "data.corpora.el.validation.column='text': not a column of json (columns: ['body'])"
    assert str(err.value) == expected


@pytest.mark.parametrize(
    ("ratio", "shares"),
    [({"en": 1e308, "el": 1e308}, {"en": 0.5, "el": 0.5}), ({"en": 3.0, "el": 1.0}, {"en": 0.75, "el": 0.25}),
     ({"en": 5e-324, "el": 5e-324}, {"en": 0.5, "el": 0.5})],
)  # fmt: skip
def test_language_ratio_is_normalised_without_overflow(text_files, ratio, shares):
    datamodule = TextCorpusDataModule(corpora(text_files), train_tokens=64, block_size=16, language_ratio=ratio)
    assert datamodule.ratio == shares


@pytest.mark.parametrize(
    ("corpora_value", "field"),
    [({}, "data.corpora"), (None, "data.corpora"), (["en"], "data.corpora"), ({"": {}}, "data.corpora"),
     ({"en": {"train": {"file": "x"}}}, "data.corpora.en")],
)  # fmt: skip
def test_corpora_shape(corpora_value, field):
    with pytest.raises(ConfigError) as err:
        TextCorpusDataModule(corpora_value, train_tokens=64, block_size=16)
    assert err.value.field == field and "\n" not in str(err.value)


# ---- GPT2GlueClassifier -------------------------------------------------------------------------

TASKS = sorted(GLUE_TASKS)
WILD_TASKS = st.one_of(anything, st.sampled_from(["mnli", "wnli", "SST2", " sst2"]))

GLUE_MODEL_FIELDS = {  # the fields with their own check (the others: test_config_properties.py)
    "task": simple(st.sampled_from(TASKS), lambda x: isinstance(x, str) and x in GLUE_TASKS, WILD_TASKS),
    "pretraining": simple(
        st.sampled_from(["mono", "bi", "tri"]),
        lambda x: is_text(x) and "-" not in x,
        st.one_of(st.text(max_size=6), anything),
    ),
    "num_languages": Field(
        st.integers(1, 5), lambda x, c: is_int(x, 1) or (x is None and c["pretraining"] in ("mono", "bi"))
    ),
    "targets": simple(PATTERNS, are_patterns, WILD_PATTERNS),
}


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.sampled_from(["hf", "", "missing", "missing.ckpt"]), anything))
def test_glue_classifier_init_from(hf_directory, init_from):
    where = {"hf": str(hf_directory), "missing": str(hf_directory / "missing"),
             "missing.ckpt": str(hf_directory / "missing.ckpt")}  # fmt: skip
    resolved = where.get(init_from, init_from) if isinstance(init_from, str) else init_from
    named = [] if init_from == "hf" else ["model.init_from"]
    check_refusal(lambda: GPT2GlueClassifier(task="rte", init_from=resolved), named, repr(init_from), below=False)


# ---- GlueDataModule ---------------------------------------------------------------------------


def glue_fields(files: dict[str, str]) -> dict[str, Field]:
    def ok_files(x: Any) -> bool:
        if x is None:
            return True
        if not isinstance(x, Mapping) or set(x) != {"train", "validation"}:
            return False
        return all(
            is_text(p) and Path(p).suffix.lower() in (".json", ".jsonl", ".csv", ".parquet") and Path(p).is_file()
            for p in x.values()
        )

    bad_files = [
        {"train": files["train"]}, {**files, "test": files["train"]}, {"train": files["train"], "validation": 3},
        {"train": files["train"], "validation": files["train"] + ".txt"}, {**files, "train": files["train"] + "x.csv"},
        [files["train"], files["validation"]], files["train"], {"train": "", "validation": files["validation"]},
    ]  # fmt: skip
    return {
        "task": simple(st.sampled_from(TASKS), lambda x: isinstance(x, str) and x in GLUE_TASKS, WILD_TASKS),
        "data_files": simple(st.sampled_from([None, files]), ok_files, st.one_of(anything, st.sampled_from(bad_files))),
        "max_length": Field(
            st.integers(2, 1024),
            lambda x, c: is_int(x, 2 if len(GLUE_TASKS[c["task"]].text_columns) == 2 else 1),
        ),
    }


@pytest.fixture(scope="module")
def glue_files(tmp_path_factory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("glue")
    files = {"train": directory / "train.jsonl", "validation": directory / "validation.csv"}
    for path in files.values():
        path.write_text("not read at construction\n")
    return {split: str(path) for split, path in files.items()}


# ---- frozen-encoder data: CIFAR-10 and 20 Newsgroups ------------------------------------------


def ok_device(x: Any) -> bool:
    if x is None:
        return True
    if not is_text(x):
        return False
    try:
        kind = torch.device(x).type
    except RuntimeError:
        return False
    return {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}.get(kind, True)


def expandable(x: Any) -> bool:
    """A path whose ``~`` / ``~user`` prefix names an existing home directory."""
    try:
        Path(x).expanduser()
    except RuntimeError:
        return False
    return True


ENCODED_FIELDS = {  # the fields with their own check (the others: test_config_properties.py)
    "cache_dir": simple(
        st.one_of(st.none(), st.text(min_size=1, max_size=8).filter(expandable)),
        optional(lambda x: is_text(x) and expandable(x)),
        st.one_of(anything, st.sampled_from(["~", "~/features", "~no_such_user_x/features"])),
    ),
    "device": simple(
        st.sampled_from([None, "cpu"]),
        ok_device,
        st.one_of(anything, st.sampled_from(["tpu9", "cuda", "cuda:0", "mps", "", "cpu:0", "gpu"])),
    ),
}
TASK_ARGS = {"task_grid": [1, 2], "train_examples": 10}


def weights_of(encoder: str) -> list[str]:
    return list(torchvision.models.get_model_weights(encoder).__members__)


IMAGE_MODELS = tuple(torchvision.models.list_models(module=torchvision.models))


def cifar_fields(root: str) -> dict[str, Field]:
    return {
        **ENCODED_FIELDS,
        "root": simple(st.just(root), lambda x: x == root, st.one_of(anything, st.sampled_from(["", root + "/x"]))),
        "download": simple(st.just(False), lambda x: type(x) is bool),
        # true is valid, but the fixture is not the official release: the error then names data.root
        "check_md5": Field(st.just(False), lambda x, c: x is False, anything, ("root",)),
        "encoder": Field(
            st.sampled_from(["resnet18", "resnet50", "vit_b_16"]),
            lambda x, c: x in IMAGE_MODELS and (c["weights"] is None or c["weights"] in weights_of(x)),
            st.one_of(anything, st.sampled_from(["resnet500", "", "ResNet18", "alexnet", "raft_small"])),
            ("weights",),
        ),
        "weights": Field(
            st.sampled_from([None, "DEFAULT", "IMAGENET1K_V1"]),
            lambda x, c: x is None or (is_text(x) and x.split(".")[-1] in weights_of(c["encoder"])),
            st.one_of(anything, st.sampled_from(["IMAGENET1K_V9", "", "ResNet50_Weights.IMAGENET1K_V1"])),
        ),
    }


PARTS = ["headers", "footers", "quotes"]


def newsgroups_fields(root: str, encoder: str) -> dict[str, Field]:
    return {
        **ENCODED_FIELDS,
        # sklearn without download reads its cache at once: none here, so the error names data.root
        "source": Field(
            st.just("directory"),
            lambda x, c: x == "directory" or (x == "sklearn" and c["download"] is True),
            st.one_of(anything, st.sampled_from(["sklearn", "web", "Directory"])),
            ("root",),
        ),
        "root": simple(st.just(root), lambda x: x == root, st.one_of(anything, st.sampled_from(["", root + "/x"]))),
        "download": simple(st.booleans(), lambda x: type(x) is bool),
        "remove": simple(
            st.lists(st.sampled_from(PARTS), unique=True, max_size=3),
            lambda x: isinstance(x, list | tuple) and all(isinstance(p, str) and p in PARTS for p in x),
            st.one_of(anything, st.lists(st.text(max_size=7), max_size=2), st.just("headers"), st.just(("quotes",))),
        ),
        "encoder": simple(st.just(encoder), lambda x: x == encoder, st.one_of(anything, st.sampled_from(["", root]))),
    }


# ---- fields of the linear data and the sweep callback with their own check ---------------------
# (their other fields are tried by test_config_properties.py, the oracle from their declarations)

DIGITS_FIELDS = {
    "task_grid": Field(
        st.lists(st.integers(1, 45), min_size=1, max_size=5, unique=True),
        lambda x, c: (
            isinstance(x, list | tuple)
            and bool(x)
            and all(is_int(t, 1) and t <= 45 for t in x)
            and len(set(x)) == len(x)
            and max(x) <= c["train_examples"]
        ),
        st.one_of(anything, st.lists(st.integers(-2, 60), max_size=5), st.just((1, 2)), st.just("12")),
        ("train_examples",),
    ),
    "train_examples": Field(st.integers(45, 2000), lambda x, c: is_int(x, max(c["task_grid"]))),
}
GROUPINGS = st.sampled_from(["per_block", "per_matrix", r"h\.(\d+)\.", r"(?P<layer>h\.\d+)", r"\.(c_attn|c_proj)\."])
WILD_GROUPINGS = st.one_of(
    anything, st.sampled_from([r"h\.\d+", "(", "per_layer", "()", "[a-(", ["per_block"], "(?:x)"])
)
SWEEP_FIELDS = {
    "targets": simple(st.one_of(st.none(), PATTERNS), optional(are_patterns), WILD_PATTERNS),
    "groups": simple(st.one_of(st.none(), GROUPINGS), optional(is_grouping), WILD_GROUPINGS),
}


# ---- every field of every experiment -------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """The tiny local fixtures the constructors read."""

    hf_directory: Path
    text_files: dict[str, str]
    glue_files: dict[str, str]
    encoders: Any


@dataclass(frozen=True)
class Experiment:
    """An experiment's fields, how to build it from a configuration, and the prefix of its error fields."""

    fields: Callable[[Resources], dict[str, Field]]
    build: Callable[[Resources], Callable[..., Any]]
    prefix: str


EXPERIMENTS = {
    "GPT2LanguageModel": Experiment(
        lambda r: LM_FIELDS, lambda r: partial(GPT2LanguageModel, gpt2_config=TINY_GPT2, tokenizer="train"), "model."
    ),
    "GPT2LanguageModel.gpt2_config": Experiment(
        lambda r: GPT2_CONFIG_FIELDS, lambda r: lambda **c: GPT2LanguageModel(gpt2_config=c, tokenizer="train"),
        "model.gpt2_config.",
    ),
    "TextCorpusDataModule": Experiment(
        lambda r: TEXT_FIELDS, lambda r: partial(TextCorpusDataModule, corpora(r.text_files)), "data."
    ),
    "GPT2GlueClassifier": Experiment(
        lambda r: GLUE_MODEL_FIELDS, lambda r: partial(GPT2GlueClassifier, init_from=str(r.hf_directory)), "model."
    ),
    "GlueDataModule": Experiment(lambda r: glue_fields(r.glue_files), lambda r: GlueDataModule, "data."),
    "Cifar10TasksDataModule": Experiment(
        lambda r: cifar_fields(str(r.encoders.cifar_root)), lambda r: partial(Cifar10TasksDataModule, **TASK_ARGS),
        "data.",
    ),
    "NewsgroupsTasksDataModule": Experiment(
        lambda r: newsgroups_fields(str(r.encoders.newsgroups_root), str(r.encoders.bert)),
        lambda r: partial(NewsgroupsTasksDataModule, **TASK_ARGS), "data.",
    ),
    "DigitsTasksDataModule": Experiment(lambda r: DIGITS_FIELDS, lambda r: DigitsTasksDataModule, "data."),
    "PerturbationSweep": Experiment(
        lambda r: SWEEP_FIELDS, lambda r: partial(PerturbationSweep, {"gaussian_noise": {"levels": [0.1]}}),
        "PerturbationSweep.",
    ),
}  # fmt: skip
PLACEHOLDERS = Resources(
    Path("hf"), {}, {"train": "t.jsonl", "validation": "v.csv"},
    SimpleNamespace(cifar_root="cifar", newsgroups_root="newsgroups", bert="bert"),
)  # fmt: skip
FIELDS = [(experiment, name) for experiment, spec in EXPERIMENTS.items() for name in spec.fields(PLACEHOLDERS)]


@pytest.fixture(scope="module")
def resources(hf_directory, text_files, glue_files, encoder_fixtures) -> Resources:
    return Resources(hf_directory, text_files, glue_files, encoder_fixtures)


@pytest.mark.parametrize(("experiment", "name"), FIELDS)
@PER_FIELD
@given(data=st.data())
def test_every_field_rejects_invalid_and_accepts_valid_values(resources, experiment, name, data):
    spec = EXPERIMENTS[experiment]
    fields = spec.fields(resources)
    check_verdict(spec.build(resources), fields, name, data.draw(one_field_off(fields, name)), spec.prefix)


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
@settings(max_examples=2, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # loops: no shrinking
@given(data=st.data())
def test_every_field_at_each_boundary_value(resources, experiment, data):
    spec = EXPERIMENTS[experiment]
    fields, build = spec.fields(resources), spec.build(resources)
    base = data.draw(valid_config(fields))
    for name in fields:
        for value in EDGES:
            check_verdict(build, fields, name, {**base, name: value}, spec.prefix)
