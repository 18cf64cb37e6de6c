"""The end-of-run summary of a one-model sweep: its files, clean metric and level-averaged metric."""

from __future__ import annotations

import time

from cognitive_reserve.io import SweepCsvWriter
from cognitive_reserve.sweep import SweepRow
from run_outputs.run_summary import describe_run
from tracking.wandb import WandbRunDir


def test_one_model_sweep_reports_clean_metric_and_auc_and_skips_older_files(tmp_path):
    old = tmp_path / "robustness" / "sweep_test_epoch000.csv"
    with SweepCsvWriter(old) as writer:
        writer.write([SweepRow("lm", 1, "random_deletion", 0.0, 0, 1, "perplexity", 9.0)])
    started = time.time() + 0.01
    time.sleep(0.02)
    with SweepCsvWriter(tmp_path / "robustness" / "sweep_test_epoch003.csv") as writer:
        writer.write([
            SweepRow("lm", 1, "random_deletion", level, trial, trial, "perplexity", value)
            for level, values in ((0.0, (2.0, 2.0)), (0.5, (3.0, 5.0)))
            for trial, value in enumerate(values)
        ])  # fmt: skip
    text = describe_run(tmp_path, started, WandbRunDir(tmp_path / "wandb" / "offline-run-x", None))
    assert "sweep      robustness/sweep_test_epoch003.csv" in text and "epoch000" not in text
    assert f"wandb sync {tmp_path / 'wandb' / 'offline-run-x'}" in text
    (line,) = [line for line in text.splitlines() if "level-averaged" in line]
    # clean: mean at level 0 = 2; AUC: trapezoid of (0, 2) and (0.5, 4) over the range 0.5 = 3
    assert line.strip() == "sweep_test_epoch003: lm perplexity: clean 2; level-averaged (AUC) random_deletion 3"


def test_fit_summary_gives_the_last_validation_metrics_in_natural_order(tmp_path):
    metrics = {"val/loss": 0.9698, "val/perplexity_en": 2.637, "val/bits_per_byte_en": 0.29153}
    text = describe_run(tmp_path, time.time(), None, last_validation=(300, metrics))
    assert "  last validation (step 300): val/bits_per_byte_en 0.2915, val/loss 0.9698, val/perplexity_en 2.637" in (
        text.splitlines()
    )
    per_task = {f"val/mse_T{t}": 0.1 * t for t in (1, 2, 10, 20)} | {
        "val/mse": 0.5,
        "val/mse_T3": 0.3,
        "val/mse_T4": 0.4,
    }
    (line,) = [line for line in describe_run(tmp_path, 0, None, (1, per_task)).splitlines() if "validation" in line]
    assert line.endswith("val/mse 0.5, val/mse_T1 0.1, val/mse_T2 0.2, val/mse_T3 0.3, val/mse_T4 0.4, val/mse_T10 1 "
                         "(+1 more in the logger)")  # fmt: skip
