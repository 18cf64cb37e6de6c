"""Config typos and wrong types: one line ``error: <field>=<value>: <reason>`` with what is accepted and a
"did you mean" for a near miss; abbreviated options are refused, not guessed.

The fast tests give ``run_cli.config_check`` what a refused command gave (its arguments, the config files they
name) and what the parser accepts (its keys, their types; the classes are small ones here, importing the real
ones costs Lightning's import): the error never depends on the parser's wording. The slow ones run the real
parser in-process, and once in a fresh interpreter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from cognitive_reserve.fields import Field
from run_cli.config_check import ParserContext, first_problem
from run_cli.parser_errors import explain
from tests.helpers.cli import ROOT, run_cli

DIGITS = str(ROOT / "configs" / "linear" / "digits.yaml")
DIGITS_TEXT = Path(DIGITS).read_text(encoding="utf-8")
OPTIONS = ["config", "seed_everything", "trainer", "trainer.max_epochs", "trainer.callbacks", "model", "ckpt_path"]
HINTS = {"trainer.max_epochs": int | None, "seed_everything": bool | int, "ckpt_path": str | None}


class Ridge:
    """A model class with the arguments a user mistypes."""

    def __init__(
        self,
        k: Annotated[int, Field("dimension", ge=1)] = 2,
        ridge: float = 1.0,
        solver: Literal["svd", "sgd"] = "svd",
        task_grid: list[int] | None = None,
    ) -> None:
        self.k, self.ridge, self.solver, self.task_grid = k, ridge, solver, task_grid


class Monitor:
    def __init__(self, every_n_steps: int = 50) -> None:
        self.every_n_steps = every_n_steps


class Logger:
    """Passes ``**kwargs`` on where no signature shows them (as ``WandbLogger`` to ``wandb.init``)."""

    def __init__(self, project: str | None = None, **kwargs: Any) -> None:
        self.project, self.kwargs = project, kwargs


MODEL = f"model:\n  class_path: {__name__}.Ridge\n  init_args:\n    k: 3\n"


def problem(tmp_path: Path, *args: str, config: str = MODEL, **context: Any) -> str:
    """The one-line error of ``fit --config <config> ARGS`` (``config`` written to a file)."""
    path = tmp_path / "c.yaml"
    path.write_text(config, encoding="utf-8")
    given = ParserContext(["fit", "--config", str(path), *args], OPTIONS, "fit", hints=HINTS, **context)
    found = first_problem(given)
    return "" if found is None else str(found)


def test_wrong_type_names_the_field_value_and_expected_type(tmp_path):
    assert problem(tmp_path, "--model.init_args.k=four") == "model.k='four': expected an integer"
    assert problem(tmp_path, config=MODEL.replace("k: 3", "k: four")) == "model.k='four': expected an integer"


def test_a_literal_lists_its_choices_and_the_near_miss(tmp_path):
    expected = "model.solver='svdd': must be one of 'svd', 'sgd'; did you mean 'svd'?"
    assert problem(tmp_path, "--model.solver", "svdd") == expected


def test_a_list_item_of_the_wrong_type_is_the_value_shown(tmp_path):
    assert problem(tmp_path, "--model.init_args.task_grid=[1, x]") == "model.task_grid='x': expected an integer"


def test_unknown_class_argument_takes_its_value_from_the_config_file(tmp_path):
    config = MODEL + "    rigde: 1.0\n"
    assert problem(tmp_path, config=config) == "model.rigde=1.0: not an argument of Ridge; did you mean ridge?"


def test_a_callback_argument_is_named_after_its_class(tmp_path):
    args = [f"--trainer.callbacks+={__name__}.Monitor", "--trainer.callbacks.every_n_step=3"]
    assert problem(tmp_path, *args) == "Monitor.every_n_step=3: not an argument of Monitor; did you mean every_n_steps?"


def test_a_class_that_passes_kwargs_on_takes_other_names_but_not_near_misses(tmp_path):
    config = MODEL + f"trainer:\n  callbacks:\n    - class_path: {__name__}.Logger\n      init_args:\n"
    assert problem(tmp_path, config=config + "        group: g\n") == ""
    assert problem(tmp_path, config=config + "        projct: p\n") == (
        "Logger.projct='p': not an argument of Logger; did you mean project?"
    )


def test_a_class_path_naming_no_class(tmp_path):
    wrong = MODEL.replace(".Ridge", ".Ridg")
    assert problem(tmp_path, config=wrong) == (
        f"model.class_path='{__name__}.Ridg': no class Ridg in {__name__}; did you mean Ridge?"
    )


def test_misspelt_option_and_key_are_refused_with_the_near_miss(tmp_path):
    expected = "trainer.max_epoch=2: no such option; did you mean --trainer.max_epochs?"
    assert problem(tmp_path, "--trainer.max_epoch=2") == expected
    typo = MODEL + "trainer:\n  max_epoch: 1\n"
    assert problem(tmp_path, config=typo) == "trainer.max_epoch=1: no such key; did you mean trainer.max_epochs?"


def test_union_of_plain_types_says_each(tmp_path):
    assert problem(tmp_path, "--trainer.max_epochs=two") == "trainer.max_epochs='two': expected an integer or null"
    expected = "seed_everything='abc': expected true or false or an integer"
    assert problem(tmp_path, "--seed_everything=abc") == expected


def test_subcommand_file_and_syntax_errors(tmp_path):
    context = ParserContext(["fitt", "--config", DIGITS], OPTIONS, subcommands=["fit", "validate", "test"])
    assert str(first_problem(context)) == "subcommand='fitt': must be one of fit, validate, test; did you mean fit?"
    assert problem(tmp_path, "--config=nope.yaml") == "config='nope.yaml': no such file"
    bad = problem(tmp_path, config="trainer:\n  max_epochs: [1, 2\n")
    assert bad.endswith("not valid YAML: expected ',' or ']', but got '<stream end>' (line 3, column 1)")


def test_an_option_of_another_subcommand_says_which(tmp_path):
    context = ParserContext(["test", "--start_over=true"], OPTIONS, "test", {"start_over": ["fit"]})
    assert str(first_problem(context)) == "start_over=True: an option of fit only, not of test"


def test_the_error_does_not_depend_on_the_parsers_words(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(MODEL, encoding="utf-8")
    context = ParserContext(["fit", "--config", str(path), "--model.init_args.k=four"], OPTIONS, "fit")
    for message in ("", "anything at all", "Parser key \"model\":\n  Expected a <class 'int'>. Got value: four"):
        assert str(explain(message, context)) == "model.k='four': expected an integer"


def test_what_the_check_does_not_find_still_gives_one_line():
    error = explain('Parser key "x":\n  something\n  new', ParserContext(["fit"], ["model"], "fit"))
    assert str(error) == "model=None: required: give --config CONFIG.yaml (or --model ...)"
    error = explain('Parser key "x":\n  something\n  new', ParserContext(["fit"], ["trainer"], "fit"))
    assert str(error) == 'arguments=None: Parser key "x": something new'


# ---- the real parser, in-process (slow: it builds the LightningCLI) -------------------------------------------


def refused(args: list[str], capfd) -> str:
    from run import main

    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line: no usage, no union-subtype text
    return err[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (["--model.init_args.k=four"], "error: model.k='four': expected an integer"),
        (["--trainer.max_epoch=2"], "error: trainer.max_epoch=2: no such option; did you mean --trainer.max_epochs?"),
        (["--model.solver", "svdd"], "error: model.solver='svdd': must be one of 'svd', 'sgd'; did you mean 'svd'?"),
        (["--trainer.callbacks+=callbacks.SpectralMonitor", "--trainer.callbacks.every_n_step=3"],
         "error: SpectralMonitor.every_n_step=3: not an argument of SpectralMonitor; did you mean every_n_steps?"),
        (["--start_over=maybe"], "error: start_over='maybe': expected true or false"),
        (["--trainer.max_epochs=two"], "error: trainer.max_epochs='two': expected an integer or null"),
        (["--data.class_path=datamodules.DigitTasksDataModule"],
         "error: data.class_path='datamodules.DigitTasksDataModule': no class DigitTasksDataModule in datamodules; "
         "did you mean DigitsTasksDataModule?"),
    ],
)  # fmt: skip
def test_command_line_typos_and_types_are_one_line(extra, line, tmp_path, capfd):
    out = tmp_path / "out"
    assert refused(["fit", "--config", DIGITS, f"--trainer.default_root_dir={out}", *extra], capfd) == line
    assert not out.exists()


@pytest.mark.slow
def test_yaml_typos_are_one_line_and_help_still_prints_the_usage(tmp_path, capfd):
    from run import main

    typo = tmp_path / "typo.yaml"
    typo.write_text(DIGITS_TEXT.replace("  max_epochs: 1 ", "  max_epoch: 1  "), encoding="utf-8")
    line = refused(["fit", "--config", str(typo)], capfd)
    assert line == "error: trainer.max_epoch=1: no such key; did you mean trainer.max_epochs?"
    assert refused(["fitt", "--config", DIGITS], capfd) == (
        "error: subcommand='fitt': must be one of fit, validate, test, predict; did you mean fit?"
    )
    with pytest.raises(SystemExit) as done:
        main(["fit", "--help"])
    assert done.value.code == 0 and "--trainer.max_epochs" in capfd.readouterr().out


@pytest.mark.slow
def test_a_fresh_interpreter_prints_one_line_exits_2_and_creates_nothing(tmp_path):
    config = tmp_path / "rigde.yaml"
    config.write_text(DIGITS_TEXT.replace("ridge: 1.0\n", "rigde: 1.0\n"), encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli("fit", "--config", str(config), f"--trainer.default_root_dir={out}", timeout=300)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: model.rigde=1.0: not an argument of LinearMultitaskRegression; did you mean ridge?"
    ]
    assert not out.exists()
