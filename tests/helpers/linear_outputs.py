"""The output contract of a linear experiment's fit, checked the same way for every dataset."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.wandb_offline import find_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LINEAR_FIT_OUTPUTS = {
    "sweep_fit_epoch000.csv", "sweep_fit_epoch000.csv.fingerprint", "sweep_fit_epoch000_summary.csv",
    "sweep_fit_epoch000.png", "robustness_slope.csv", "robustness_slope.png",
}  # fmt: skip


def assert_outputs_under_root(out: Path, cwd: Path) -> None:
    """Every output of the run is under ``out`` (nothing in the working directory ``cwd``)."""
    assert list(cwd.iterdir()) == []
    assert_linear_fit_outputs(out)


def assert_linear_fit_outputs(out: Path) -> None:
    """The outputs of a linear fit under ``out``: the sweep and slope tables and figures, one W&B run and a
    checkpoint."""
    robustness = out / "robustness"
    assert {p.name for p in robustness.iterdir()} == LINEAR_FIT_OUTPUTS
    for png in robustness.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC
    assert len(find_runs(out)) == 1
    assert list(out.rglob("*.ckpt"))
