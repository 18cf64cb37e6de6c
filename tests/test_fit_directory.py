"""A fit into a directory that already holds a run: refused with one line naming the two ways on, continued
with ``--ckpt_path last`` (last.ckpt overwritten, never last-v1.ckpt beside it), or started over with
``--start_over true`` (the old run moved to ``<dir>.old-<n>``, nothing deleted). A refused command creates
nothing: no directory, no seed line, no W&B run."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from cognitive_reserve.errors import ConfigError
from tests.helpers.cli import ROOT

DIGITS = str(ROOT / "configs" / "linear" / "digits.yaml")


def files(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its modification time: what a refused command must leave alone."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def last_checkpoints(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "checkpoints").glob("last*.ckpt"))


def epoch_of(checkpoint: Path) -> int:
    return torch.load(checkpoint, weights_only=True, map_location="cpu")["epoch"]


def test_start_over_moves_to_the_first_free_old_n_and_only_on_rank_zero(tmp_path, monkeypatch):
    from run_cli.fit_directory import aside_path, check_fit_directory

    root = tmp_path / "run"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "last.ckpt").write_bytes(b"")
    (tmp_path / "run.old-1").mkdir()
    assert aside_path(root) == tmp_path / "run.old-2"
    assert check_fit_directory(root, None, start_over=True) == tmp_path / "run.old-2"
    assert check_fit_directory(root, "last", start_over=False) is None  # continues the run
    assert check_fit_directory(root, str(root / "checkpoints" / "last.ckpt"), start_over=False) is None
    with pytest.raises(ConfigError, match="contradicts --ckpt_path last"):
        check_fit_directory(root, "last", start_over=True)
    with pytest.raises(ConfigError, match=r"already holds a run \(checkpoints/last.ckpt\)"):
        check_fit_directory(root, str(tmp_path / "elsewhere.ckpt"), start_over=False)  # a branch into a used dir
    monkeypatch.setattr("run_cli.fit_directory.rank_zero_only.rank", 1)
    assert check_fit_directory(root, None, start_over=True) is None  # rank 0 moves it, not this one
    monkeypatch.chdir(root)
    with pytest.raises(ConfigError, match="holds the working directory"):
        check_fit_directory(Path("."), None, start_over=True)


@pytest.mark.slow
def test_second_fit_is_refused_continued_or_started_over_never_two_last_checkpoints(tmp_path, capfd):
    from run import main

    root = tmp_path / "run"
    args = ["fit", "--config", DIGITS, f"--trainer.default_root_dir={root}", "--trainer.logger=false",
            "--data.init_args.task_grid=[2]"]  # fmt: skip
    main(args)
    assert last_checkpoints(root) == ["last.ckpt"] and epoch_of(root / "checkpoints" / "last.ckpt") == 0
    assert "last validation (step 1): val/mse " in capfd.readouterr().out  # the end-of-run summary
    before = files(root)

    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2
    (line,) = capfd.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: trainer.default_root_dir='{root}': already holds a run (checkpoints/")
    assert line.endswith(
        f"continue it with --ckpt_path last, or train afresh with --start_over true (moves it aside to {root}.old-1)"
    )
    assert files(root) == before

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main([*args, "--ckpt_path", "last", "--trainer.max_epochs=2"])
    assert last_checkpoints(root) == ["last.ckpt"] and epoch_of(root / "checkpoints" / "last.ckpt") == 1
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]  # expected when continuing

    main([*args, "--start_over", "true"])
    assert epoch_of(tmp_path / "run.old-1" / "checkpoints" / "last.ckpt") == 1  # the continued run, kept
    assert epoch_of(root / "checkpoints" / "last.ckpt") == 0  # a fresh one
    assert (root / "robustness" / "sweep_fit_epoch000.csv").is_file()
    main([*args, "--start_over", "true"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.old-1", "run.old-2"]


@pytest.mark.slow
def test_a_refused_command_creates_nothing_and_prints_one_line(tmp_path, capfd):
    from run import main

    root = tmp_path / "run"
    with pytest.raises(SystemExit) as refused:
        main(["fit", "--config", DIGITS, f"--trainer.default_root_dir={root}", "--data.init_args.train_examples=0"])
    assert refused.value.code == 2
    captured = capfd.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()  # no seed line, no W&B line
    assert line.startswith("error: data.train_examples=0: must be an integer >= 20")
    assert not root.exists()
    with pytest.raises(SystemExit):
        main(["test", "--config", DIGITS, f"--trainer.default_root_dir={root}", "--start_over=true"])
    assert capfd.readouterr().err.strip() == "error: start_over=True: an option of fit only, not of test"
