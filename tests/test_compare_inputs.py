"""``run_reports.compare``'s input (issue 28, item 5): a table compared with itself is refused, and a table of several
models (the linear experiment's own sweep) asks for ``--model-a``/``--model-b`` instead of blaming duplicated rows."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from cognitive_reserve import ConfigError, SweepCsvWriter, SweepRow
from cognitive_reserve.crossover import find_crossover
from run_reports.compare import main

LEVELS = (0.0, 0.2, 0.4)
LINEAR_MODELS = ("linear_svd_k4_T1", "linear_svd_k4_T2", "linear_svd_k4_T5")


def linear_rows(models=LINEAR_MODELS) -> list[SweepRow]:
    """A sweep of several models in one table, as the linear experiment writes it: the same levels and trials
    for every model, T = 1 hurt fastest."""
    return [
        SweepRow(model, tasks, "random_deletion", level, trial, 1000 + trial, "mse_task_vector",
                 0.1 + level / tasks + 0.01 * trial, stage="fit", epoch=0)
        for tasks, model in zip((1, 2, 5), models, strict=False) for level in LEVELS for trial in range(3)
    ]  # fmt: skip


def write(path, rows):
    with SweepCsvWriter(path) as writer:
        writer.write(rows)
    return str(path)


def refused(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def test_the_same_table_twice_is_refused(tmp_path, capsys):
    table = write(tmp_path / "mono.csv", linear_rows(LINEAR_MODELS[:1]))
    out = ["--out", str(tmp_path / "out")]
    line = refused([table, table, *out], capsys)
    assert line.startswith(f"error: table_b={table!r}: the same file as {table} (table_a): a model compared with")
    copy = shutil.copy(table, tmp_path / "copy.csv")
    assert "the same content as" in refused([table, str(copy), *out], capsys)
    seeds = ["--a", table, str(tmp_path / "other.csv"), "--b", str(copy)]
    write(tmp_path / "other.csv", linear_rows(LINEAR_MODELS[:1])[:-1])
    assert "the same content as" in refused([*seeds, *out], capsys)
    assert not (tmp_path / "out").exists()


def test_a_table_of_several_models_asks_for_the_model_flags(tmp_path, capsys):
    table = write(tmp_path / "sweep_fit_epoch000.csv", linear_rows())
    other = write(tmp_path / "other.csv", [dataclasses.replace(row, value=row.value + 0.01) for row in linear_rows()])
    line = refused([table, other, "--out", str(tmp_path / "out")], capsys)
    assert line == (
        f"error: table_a={table!r}: holds 3 models (linear_svd_k4_T1, linear_svd_k4_T2, linear_svd_k4_T5): pick the "
        "one to compare with --model-a (e.g. --model-a linear_svd_k4_T1)"
    )
    assert "appears twice" not in line


def test_two_models_of_one_table_compare_but_one_model_with_itself_is_refused(tmp_path, capsys):
    table = write(tmp_path / "sweep_fit_epoch000.csv", linear_rows())
    out = str(tmp_path / "out")
    main([table, table, "--model-a", "linear_svd_k4_T1", "--model-b", "linear_svd_k4_T5", "--out", out])
    assert "linear_svd_k4_T5" in capsys.readouterr().out and (tmp_path / "out" / "crossover.csv").is_file()
    same = ["--model-a", "linear_svd_k4_T1", "--model-b", "linear_svd_k4_T1"]
    assert "a model compared with itself" in refused([table, table, *same, "--out", out], capsys)
    line = refused([table, table, "--model-a", "linear_svd_k4_T1", "--model-b", "T9", "--out", out], capsys)
    assert line.endswith("has no rows of model 'T9' (models: linear_svd_k4_T1, linear_svd_k4_T2, linear_svd_k4_T5)")


def test_the_api_names_several_models_before_duplicates():
    rows = linear_rows()
    with pytest.raises(ConfigError, match="holds several models"):
        find_crossover(rows, rows, "random_deletion", "mse_task_vector")
