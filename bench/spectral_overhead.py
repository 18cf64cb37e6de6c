"""Cost of the SpectralMonitor while a tiny GPT-2 trains (issue #6: 4).

    python bench/spectral_overhead.py [--threads 1] [--steps 200] [--monitor-tree PATH]

Trains the tiny GPT-2 of ``configs/gpt2/tiny_bilingual.yaml`` (batches of 8 × 64 tokens, AdamW) with
a real Lightning ``Trainer`` and ``SpectralMonitor`` at its defaults (every 50 optimizer steps, warm
power iteration), timing every ``record`` call of the monitor inside that same run:

- ``spectral_power_overhead``: monitor time ÷ (training time − monitor time), i.e. its share of the
  training step time, measurements at steps 0, 50, 100, ... included (the first is an exact SVD).
- ``spectral_exact_overhead``: the same with ``method: exact`` (``torch.linalg.svdvals``).
- ``spectral_power_vs_svdvals``: one measurement of all monitored matrices with the warm power
  iteration ÷ one with ``svdvals``, on the trained weights (best of 20).
- ``spectral_train_end_s``: the monitor's one-off work when training ends (its history figure).

``--monitor-tree`` points at a checkout that has ``callbacks/spectral_monitor.py`` when this one
does not yet (its modules are looked up there after this tree's).
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import TINY_CONFIG, figure, setup, timed, tiny_gpt2


def train(monitor_class: type, method: str, steps: int, workdir: Path) -> tuple[float, float, float, Any]:
    """``(training seconds, monitor seconds, train-end seconds, the monitor)`` of one fit."""
    import lightning as L

    bench = tiny_gpt2(workdir)  # the corpus, its tokenizer, the model and the datamodule of the tiny config
    monitor = monitor_class(method=method)
    spent: list[float] = []
    ended: list[float] = []
    monitor.record = timed(monitor.record, spent)
    monitor.on_train_end = timed(monitor.on_train_end, ended)
    clock: dict[str, float] = {}

    class Clock(L.Callback):
        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            clock["start"] = time.perf_counter()

        def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            clock["end"] = time.perf_counter()

    trainer = L.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        gradient_clip_val=TINY_CONFIG["trainer"]["gradient_clip_val"], default_root_dir=workdir / method,
        callbacks=[Clock(), monitor],
    )  # fmt: skip
    trainer.fit(bench.module, datamodule=bench.datamodule)
    return clock["end"] - clock["start"], sum(spent), sum(ended), monitor


def best_of(function: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def load_monitor(tree: str | None) -> type | None:
    """``SpectralMonitor`` from this checkout, or from ``tree`` when given (None when neither has it)."""
    if tree is not None:
        for package in ("callbacks", "robustness"):
            importlib.import_module(package).__path__.append(str(Path(tree) / package))
    try:
        return importlib.import_module("callbacks.spectral_monitor").SpectralMonitor
    except ImportError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--monitor-tree", default=None)
    args = parser.parse_args()
    setup(args.threads)
    monitor_class = load_monitor(args.monitor_tree)
    if monitor_class is None:
        figure("spectral_monitor", "unavailable (no callbacks/spectral_monitor.py; pass --monitor-tree)")
        return
    figure("spectral_every_n_steps", monitor_class().every_n_steps, "d")
    figure("train_steps", args.steps, "d")
    monitors = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("power", "exact"):
            total, spent, ended, monitors[method] = train(monitor_class, method, args.steps, Path(tmp))
            figure(f"train_step_ms_{method}_run", 1000 * (total - spent) / args.steps)
            figure(f"spectral_{method}_record_ms", 1000 * spent / (args.steps // monitors[method].every_n_steps + 1))
            figure(f"spectral_{method}_overhead", spent / (total - spent))
            figure(f"spectral_{method}_train_end_s", ended)
    power, exact = monitors["power"], monitors["exact"]
    exact.matrices = power.matrices  # the same weights: those of the power run
    figure("spectral_matrices", len(power.matrices), "d")
    with torch.no_grad():
        power_time = best_of(lambda: power.measure(args.steps), 20)
        exact_time = best_of(lambda: exact.measure(args.steps), 20)
    figure("spectral_power_measure_ms", 1000 * power_time)
    figure("spectral_svdvals_measure_ms", 1000 * exact_time)
    figure("spectral_power_vs_svdvals", power_time / exact_time)


if __name__ == "__main__":
    main()
