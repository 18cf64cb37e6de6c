"""The one declaration per config field drives LightningCLI (``--help`` docs, ``--print_config``
defaults, ``field=value: reason`` errors before training) and ``docs/config_reference.md``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml

import config_reference
from callbacks import PerturbationSweep, SpectralMonitor
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import TABLE, Field, check_fields, declarations, declared, reference_table
from datamodules import DigitsTasksDataModule
from lightning_modules import LinearMultitaskRegression
from tests.helpers.cli import ROOT

DIGITS = str(ROOT / "configs" / "linear" / "digits.yaml")


def test_config_reference_is_generated_from_the_declarations():
    assert config_reference.main(["--check"]) == 0, "run: python config_reference.py"


def test_every_declared_class_has_a_generated_table():
    text = config_reference.REFERENCE.read_text("utf-8")
    documented = {config_reference.resolve(match["path"]) for match in TABLE.finditer(text)}
    missing = [cls.__qualname__ for cls in config_reference.config_classes() if cls not in documented]
    assert not missing, f"add <!-- fields: ... --> tables for {missing}"


def test_docstrings_document_every_declared_field_once():
    for cls in config_reference.config_classes():
        doc = inspect.getdoc(cls)
        for d in declarations(cls):
            assert doc.count(f"\n    {d.name}: {d.field.doc}") == 1, (cls, d.name)


def test_help_shows_each_fields_doc_type_and_default(capsys):
    from run import main

    with pytest.raises(SystemExit, match="0"):
        main(["fit", "--model.help", "LinearMultitaskRegression"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--model.ridge RIDGE L2 penalty of the `svd` solver's least squares" in text
    assert "(type: float, default: 1.0)" in text
    assert "(type: Literal['svd', 'sgd'], default: svd)" in text


def test_print_config_shows_the_declared_defaults(capsys):
    from run import main

    with pytest.raises(SystemExit, match="0"):
        main(["fit", "--config", DIGITS, "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    given = yaml.safe_load(Path(DIGITS).read_text())
    model = printed["model"]["init_args"]
    for d in declarations(LinearMultitaskRegression):
        if d.name not in given["model"].get("init_args", {}):
            assert model[d.name] == d.default, d.name
    (sweep,) = [c["init_args"] for c in printed["trainer"]["callbacks"] if c["class_path"].endswith("Sweep")]
    assert {d.name for d in declarations(PerturbationSweep)} == set(sweep)


def test_the_cli_refuses_a_declared_range_with_one_line_before_training(tmp_path, capsys):
    from run import main

    with pytest.raises(SystemExit, match="2"):
        main(["fit", "--config", DIGITS, f"--trainer.default_root_dir={tmp_path}", "--model.init_args.ridge=-1.5"])
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: model.ridge=-1.5: must be > 0"
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LinearMultitaskRegression(lr=0), "model.lr=0: must be > 0"),
        (
            lambda: DigitsTasksDataModule(train_examples=9),
            "data.train_examples=9: must be an integer >= 10 (data.task_grid=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))",
        ),
        (
            lambda: SpectralMonitor(iterations=5, max_iterations=4),
            "SpectralMonitor.max_iterations=4: must be an integer >= 5 (SpectralMonitor.iterations=5)",
        ),
        (lambda: PerturbationSweep({}), "PerturbationSweep.perturbations={}: give at least one perturbation"),
    ],
)  # fmt: skip
def test_the_python_api_refuses_with_the_same_one_line(build, message):
    with pytest.raises(ConfigError) as err:
        build()
    assert str(err.value) == message


def test_a_declaration_reads_as_its_type_range_and_default():
    @declared("demo")
    class Demo:
        """A demo."""

        def __init__(
            self,
            share: Annotated[float, Field("a share", gt=0, le=0.9)] = 0.5,
            count: Annotated[int | None, Field("a count (null: all)", ge=1)] = None,
            mode: Annotated[Literal["a", "b"], Field("a mode")] = "a",
            most: Annotated[int, Field("at least count", ge="count")] = 3,
        ) -> None:
            check_fields(Demo, locals())

    table = reference_table(Demo)
    assert "| `share` | a share | finite number in (0, 0.9] | 0.5 | ✓ |" in table
    assert "| `count` | a count (null: all) | null or integer ≥ 1 | null | ✓ |" in table
    assert "| `mode` | a mode | `a`, `b` | `a` | ✓ |" in table
    assert "| `most` | at least count | integer ≥ `count` | 3 | ✓ |" in table
    assert inspect.getdoc(Demo).endswith("Args:\n    share: a share\n    count: a count (null: all)\n"
                                         "    mode: a mode\n    most: at least count")  # fmt: skip
    with pytest.raises(ConfigError, match=r"^demo.most=3: must be an integer >= 4 \(demo.count=4\)$"):
        Demo(count=4)  # a bound naming another field is checked after that field


def test_a_declaration_that_cannot_be_checked_or_documented_is_refused_at_import():
    with pytest.raises(TypeError, match="the Args: section is generated"):

        @declared("demo")
        class WithArgs:
            """Args:
            x: written by hand."""

            def __init__(self, x: Annotated[int, Field("x")] = 0) -> None: ...

    with pytest.raises(TypeError, match="needs valid= and check="):

        @declared("demo")
        class Opaque:
            """A list without words for its valid values."""

            def __init__(self, items: Annotated[list[int], Field("items")] = ()) -> None: ...
