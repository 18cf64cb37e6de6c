"""Sweep time with 2 DDP processes against 1 (issue #6: 6).

    python bench/ddp_scaling.py [--config tiny_bilingual] [--fit-steps 30]

Fits the tiny GPT-2 config briefly (on the sample corpus), then runs its test-time sweep through
the real CLI, ``python run.py test ... --ckpt_path last.ckpt``, in a fresh process per setting:

- ``1proc_1thread``: one process, ``OMP_NUM_THREADS=1``;
- ``1proc_2threads``: one process, two intra-op threads;
- ``ddp2_1thread``: ``--trainer.strategy=ddp --trainer.devices=2 --trainer.accelerator=cpu`` (gloo),
  one thread per process (the machine has 2 cores);
- with CUDA devices also ``gpu1`` and, with two or more, ``ddp2_gpu``.

The sweep's own time is read from its files: from the fingerprint written just before the first
trial to the summary CSV written right after the last. Figures: ``<setting>_sweep_s``,
``<setting>_cli_s`` (whole command), ``speedup_ddp2_vs_1proc_1thread`` and ``..._vs_1proc_2threads``,
and ``ddp2_max_rel_diff`` (largest relative difference of a value between the 1- and 2-process CSVs:
the metric sums are reduced in another order).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import OFFLINE_ENV, ROOT, figure

from datamodules.sample_corpus import write_corpus
from tests.helpers.configs import config_args, gpt2_configs


def cli(args: list[str], threads: int, log: Path) -> float:
    """Run ``python run.py ARGS`` with ``threads`` intra-op threads; its wall time (raises on failure)."""
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=env, stdout=out, stderr=out, check=False)
    if done.returncode:
        raise SystemExit(f"run.py {' '.join(args[:1])} failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - start


def only_test_sweep(root: Path) -> Path:
    """The one test sweep CSV under ``root`` (named after the tested checkpoint's epoch)."""
    (path,) = (root / "robustness").glob("sweep_test_epoch???.csv")
    return path


def sweep_seconds(root: Path) -> float:
    path = only_test_sweep(root)
    started = path.with_name(path.name + ".fingerprint").stat().st_mtime
    return path.with_name(path.stem + "_summary.csv").stat().st_mtime - started


def values(root: Path) -> dict[tuple[str, ...], float]:
    with only_test_sweep(root).open() as file:
        return {
            (r["perturbation"], r["level"], r["trial"], r["metric"]): float(r["value"]) for r in csv.DictReader(file)
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny_bilingual")
    parser.add_argument("--fit-steps", type=int, default=30)
    args = parser.parse_args()
    print(f"cpu_cores: {os.cpu_count()}")
    gpus = torch.cuda.device_count()
    figure("gpus", gpus, "d")
    settings = {
        "1proc_1thread": (1, ["--trainer.accelerator=cpu", "--trainer.devices=1"]),
        "1proc_2threads": (2, ["--trainer.accelerator=cpu", "--trainer.devices=1"]),
        "ddp2_1thread": (1, ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]),
    }
    if gpus:
        settings["gpu1"] = (1, ["--trainer.accelerator=gpu", "--trainer.devices=1"])
    if gpus >= 2:
        settings["ddp2_gpu"] = (1, ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=gpu"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = write_corpus(work / "corpus", 40)
        languages = ("en", "el") if "bilingual" in args.config else ("en",)
        common = config_args(gpt2_configs(args.config))
        common += [
            arg
            for language in languages
            for split in ("train", "validation", "test")
            for arg in (f"--data.corpora.{language}.{split}.file", str(corpus[f"{language}.{split}"]))
        ]
        common += ["--trainer.enable_progress_bar=false"]
        trained = work / "fit"
        cli(
            ["fit", *common, f"--trainer.default_root_dir={trained}", f"--trainer.max_steps={args.fit_steps}"],
            2,
            work / "fit.log",
        )
        checkpoint = f"--ckpt_path={trained / 'checkpoints' / 'last.ckpt'}"
        seconds = {}
        for name, (threads, extra) in settings.items():
            root = work / name
            wall = cli(
                ["test", *common, *extra, f"--trainer.default_root_dir={root}", checkpoint],
                threads,
                work / f"{name}.log",
            )
            seconds[name] = sweep_seconds(root)
            figure(f"{name}_sweep_s", seconds[name])
            figure(f"{name}_cli_s", wall)
        figure("speedup_ddp2_vs_1proc_1thread", seconds["1proc_1thread"] / seconds["ddp2_1thread"])
        figure("speedup_ddp2_vs_1proc_2threads", seconds["1proc_2threads"] / seconds["ddp2_1thread"])
        single, double = values(work / "1proc_1thread"), values(work / "ddp2_1thread")
        figure("ddp2_same_rows", str(single.keys() == double.keys()).lower())
        figure("ddp2_max_rel_diff", max(abs(double[k] - v) / abs(v) for k, v in single.items()), ".2e")
        if "ddp2_gpu" in seconds:
            figure("speedup_ddp2_gpu_vs_gpu1", seconds["gpu1"] / seconds["ddp2_gpu"])


if __name__ == "__main__":
    main()
