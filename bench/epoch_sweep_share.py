"""Share of training time taken by the per-epoch sweep of the tiny GPT-2 configs (issue #6: 5).

    python bench/epoch_sweep_share.py [--threads 1] [--configs tiny_bilingual tiny_bilingual+tiny_layers ...]

A config ``A+B`` is ``configs/gpt2/A.yaml`` with the overlay ``configs/gpt2/B.yaml`` given after it (``tiny_layers``:
the layer-wise sweeps, per-epoch magnitude pruning of each attention matrix alone); ``tiny_bilingual`` is itself
the overlay of ``tiny_monolingual`` that adds Greek, given after it.
Runs ``run.py fit`` in this process exactly as configured (the sample corpus of
``python -m datamodules.sample_corpus``, W&B offline), timing every call of the per-epoch
``PerturbationSweep`` (the one with ``every_n_epochs``) and the training from its first to its last
batch. Figures per config: ``<config>_sweeps`` (how many per-epoch sweeps ran),
``<config>_sweep_s`` (mean seconds of one, its CSV, summary, figure and W&B logging included;
``<config>_sweep_report_s`` the summary, figure and logging alone),
``<config>_sweep_interval_s`` (training seconds per sweep) and ``<config>_epoch_sweep_share``
(sweep seconds ÷ training seconds; target ≤ 0.25).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
from common import figure, setup, timed

from callbacks.perturbation_sweep import PerturbationSweep
from datamodules.sample_corpus import write_corpus
from run import CognitiveReserveCLI
from tests.helpers.configs import config_args, gpt2_configs, merged


class Clock(L.Callback):
    """Wall time from the first training batch's start to the end of training."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


def measure(config: str, workdir: Path) -> None:
    corpus = write_corpus(workdir / "corpus", 40)
    paths = gpt2_configs(*config.split("+"))
    languages = list(merged(*paths)["data"]["init_args"]["corpora"])
    files = [
        arg
        for language in languages
        for split in ("train", "validation", "test")
        for arg in (f"--data.corpora.{language}.{split}.file", str(corpus[f"{language}.{split}"]))
    ]
    args = [
        *config_args(paths), *files,
        "--trainer.default_root_dir", str(workdir / config), "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    cli = CognitiveReserveCLI(args=args, run=False)
    per_epoch = [c for c in cli.trainer.callbacks if isinstance(c, PerturbationSweep) and c.every_n_epochs]
    spent: list[float] = []
    reporting: list[float] = []
    for callback in per_epoch:
        callback.sweep = timed(callback.sweep, spent)
        callback._report = timed(callback._report, reporting)
    clock = Clock()
    cli.trainer.callbacks.append(clock)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    figure(f"{config}_train_steps", cli.trainer.global_step, "d")
    figure(f"{config}_sweeps", len(spent), "d")
    figure(f"{config}_sweep_s", sum(spent) / max(len(spent), 1))
    figure(f"{config}_sweep_report_s", sum(reporting) / max(len(reporting), 1))
    figure(f"{config}_sweep_interval_s", clock.seconds / max(len(spent), 1))
    figure(f"{config}_epoch_sweep_share", sum(spent) / clock.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--configs", nargs="+", default=["tiny_bilingual", "tiny_monolingual", "tiny_bilingual+tiny_layers"]
    )
    args = parser.parse_args()
    setup(args.threads)
    for config in args.configs:
        with tempfile.TemporaryDirectory() as tmp:
            measure(config, Path(tmp))


if __name__ == "__main__":
    main()
