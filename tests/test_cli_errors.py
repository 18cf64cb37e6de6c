"""Config typos and wrong types: one line ``error: <field>=<value>: <reason>`` with what is accepted and a
"did you mean" for a near miss; abbreviated options are refused, not guessed.

The fast tests give ``run_cli.parser_errors.explain`` messages as jsonargparse writes them (captured from jsonargparse
4.53); the slow ones run the real parser in-process, and once in a fresh interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest

from run_cli.parser_errors import ParserContext, explain
from tests.helpers.cli import ROOT, run_cli

DIGITS = str(ROOT / "configs" / "linear" / "digits.yaml")
DIGITS_TEXT = Path(DIGITS).read_text(encoding="utf-8")
OPTIONS = ["config", "seed_everything", "trainer.max_epochs", "trainer.max_steps", "model", "data", "ckpt_path"]

UNION = """Parser key "model":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'lightning.pytorch.core.module.LightningModule'>, <class 'NoneType'>]
  Errors:
    - Problem with given class_path 'lightning_modules.LinearMultitaskRegression':
        {inner}
    - Expected a <class 'NoneType'>
  Given value type: <class 'dict'>"""


def test_wrong_type_names_the_field_value_and_expected_type():
    inner = "Parser key \"k\":\n          Expected a <class 'int'>. Got value: four"
    error = explain(UNION.format(inner=inner), ParserContext([], OPTIONS))
    assert str(error) == "model.k='four': expected an integer"


def test_a_literal_lists_its_choices_and_the_near_miss():
    inner = "Parser key \"solver\":\n          Expected a typing.Literal['svd', 'sgd']. Got value: svdd"
    error = explain(UNION.format(inner=inner), ParserContext([], OPTIONS))
    assert str(error) == "model.solver='svdd': must be one of 'svd', 'sgd'; did you mean 'svd'?"


class Ridge:
    """A model class with the argument a user misspells (importing the real ones costs Lightning's import)."""

    def __init__(self, k: int = 2, ridge: float = 1.0) -> None:
        self.k, self.ridge = k, ridge


def test_unknown_class_argument_takes_its_value_from_the_config_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"model:\n  class_path: {__name__}.Ridge\n  init_args:\n    rigde: 1.0\n")
    message = UNION.format(inner="Option 'rigde' is not accepted").replace(
        "lightning_modules.LinearMultitaskRegression", f"{__name__}.Ridge"
    )
    error = explain(message, ParserContext(["fit", "--config", str(config)], OPTIONS))
    assert str(error) == "model.rigde=1.0: not an argument of Ridge; did you mean ridge?"


def test_misspelt_option_is_refused_with_the_near_miss():
    context = ParserContext(["fit", "--trainer.max_epoch=2"], OPTIONS)
    error = explain("unrecognized arguments: --trainer.max_epoch=2", context)
    assert str(error) == "trainer.max_epoch=2: no such option; did you mean --trainer.max_epochs?"


def test_union_of_plain_types_says_each():
    message = (
        'Parser key "trainer.max_epochs":\n  Does not validate against any of the Union subtypes\n  Errors:\n'
        "    - Expected a <class 'int'>\n    - Expected a <class 'NoneType'>\n  Given value type: <class 'str'>\n"
        "  Given value: two"
    )
    error = explain(message, ParserContext([], OPTIONS))
    assert str(error) == "trainer.max_epochs='two': expected an integer or null"


def test_an_unparsed_message_still_gives_one_line():
    error = explain('Parser key "x":\n  something\n  new', ParserContext([], OPTIONS))
    assert str(error) == 'x=None: Parser key "x": something new'


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
