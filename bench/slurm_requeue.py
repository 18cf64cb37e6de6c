"""Studies on SLURM: the submission overhead per point, and what a requeue costs (needs a cluster: .ci/slurm-up.sh).

    python bench/slurm_requeue.py [--points 4] [--steps 2000]

1. **Submission.** A digits study of ``--points`` points (short fits) launched with ``--executor slurm``:
   ``launch_wall_s`` (the ``launch`` command, Python start to the array queued), ``launch_per_point_s``, and per
   point ``submit_to_job_s`` (queued to the job's own code running: SLURM's scheduling, ``srun``, submitit
   unpickling the job) and ``job_to_step_s`` (lock, state file, until ``run.py`` is started).
2. **A requeue.** A tiny GPT-2 point of ``--steps`` steps (no pause: real training) with a 1-minute time limit,
   requeued on SLURM's warning signal until it finishes. Per requeue: ``signal_to_job_end_s`` (the fit finishes
   its batch, saves ``last.ckpt``, stops; submitit requeues), ``job_end_to_restart_s`` (SLURM's requeue delay and
   scheduling), ``restart_to_training_s`` (``run.py`` starts and restores the checkpoint), their sum
   ``signal_to_training_s``; ``steps_after_signal`` (trained after the signal came, before the save: the batch
   in progress, or up to a validation due after it) and ``steps_retrained`` (steps the checkpoint did not hold:
   the step saved minus the step restored).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import figure  # noqa: E402
from tracking.offline import OFFLINE_ENV  # noqa: E402

STOPPED = re.compile(r"stopped by (\w+) \(received at step (\d+)\) at step (\d+)")


def studies(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "studies", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def state(point: Path) -> dict:
    try:
        return json.loads((point / "study" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_done(points: list[Path], timeout_s: float = 1800.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(state(point).get("state") in ("done", "failed") for point in points):
        if time.monotonic() > deadline:
            raise TimeoutError("the points did not finish")
        time.sleep(0.5)


def submission(scratch: Path, points: int, env: dict[str, str]) -> None:
    config = yaml.safe_load((ROOT / "configs/linear/digits.yaml").read_text())
    config["trainer"].update(max_epochs=5, logger=False)
    config["data"]["init_args"]["task_grid"] = [1, 2]
    (scratch / "digits.yaml").write_text(yaml.safe_dump(config))
    study = {"name": "submission", "arms": {"a": {"config": str(scratch / "digits.yaml")}},
             "grid": {"seed_everything": list(range(points))}, "steps": ["fit"],
             "executor": {"max_parallel": points, "mem_gb": 1, "timeout_min": 10}}  # fmt: skip
    (scratch / "submission.yaml").write_text(yaml.safe_dump(study))
    root = scratch / "root"
    started = time.time()
    studies("launch", str(scratch / "submission.yaml"), "--root", str(root), "--executor", "slurm", env=env)
    figure("launch_wall_s", time.time() - started, ".2f")
    figure("launch_per_point_s", (time.time() - started) / points, ".2f")
    ledger = [json.loads(line) for line in (root / "submission" / "launches.jsonl").read_text().splitlines()]
    dirs = [root / "submission" / entry["point"] for entry in ledger]
    wait_done(dirs)
    to_job = [state(d)["timings"]["job_started"] - entry["submitted"] for d, entry in zip(dirs, ledger, strict=True)]
    to_step = [state(d)["timings"]["fit_started"] - state(d)["timings"]["job_started"] for d in dirs]
    figure("points", points, "d")
    figure("submit_to_job_s_median", statistics.median(to_job), ".2f")
    figure("submit_to_job_s_max", max(to_job), ".2f")
    figure("job_to_step_s_median", statistics.median(to_step), ".3f")


def requeues(scratch: Path, steps: int, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "datamodules.sample_corpus", str(scratch / "data")], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    config = yaml.safe_load((ROOT / "configs/gpt2/tiny_monolingual.yaml").read_text())
    config["trainer"].update(max_steps=steps, logger=False, enable_progress_bar=False)
    for split in ("train", "validation", "test"):
        config["data"]["init_args"]["corpora"]["en"][split]["file"] = str(scratch / "data" / f"en.{split}.txt")
    (scratch / "gpt2.yaml").write_text(yaml.safe_dump(config))
    study = {"name": "requeue", "arms": {"mono": {"config": str(scratch / "gpt2.yaml")}}, "steps": ["fit"],
             "executor": {"timeout_min": 1, "signal_delay_s": 1, "max_requeues": 20, "mem_gb": 2}}  # fmt: skip
    (scratch / "requeue.yaml").write_text(yaml.safe_dump(study))
    root = scratch / "root"
    studies("launch", str(scratch / "requeue.yaml"), "--root", str(root), "--executor", "slurm", env=env)
    point = root / "requeue" / "mono" / "base"
    log, restored, saved_steps = point / "study" / "fit.log", [], []
    while state(point).get("state") not in ("done", "failed"):
        text = log.read_text() if log.exists() else ""
        if text.count("Restored all states from the checkpoint") > len(restored):
            restored.append(time.time())
            checkpoint = point / "checkpoints" / "last.ckpt"
            saved_steps.append(_global_step(checkpoint))
        time.sleep(0.2)
    history = state(point)["history"]
    cycles = [(a, b) for a, b in itertools.pairwise(history) if "signal" in a]
    figure("gpt2_steps", steps, "d")
    figure("requeues", len(cycles), "d")
    figure("point_state", state(point)["state"])
    if not cycles:
        return
    to_end = [a["ended"] - a["signal"] for a, _ in cycles]
    to_restart = [b["started"] - a["ended"] for a, b in cycles]
    to_training = [seen - b["started"] for (_, b), seen in zip(cycles, restored, strict=False)]
    total = [a + b + c for a, b, c in zip(to_end, to_restart, to_training, strict=False)]
    figure("signal_to_job_end_s_median", statistics.median(to_end), ".2f")
    figure("job_end_to_restart_s_median", statistics.median(to_restart), ".2f")
    figure("restart_to_training_s_median", statistics.median(to_training), ".2f")
    figure("signal_to_training_s_median", statistics.median(total), ".2f")
    figure("signal_to_training_s_max", max(total), ".2f")
    stops = _stop_steps(log)
    figure("steps_after_signal_max", max(saved - received for _, received, saved in stops), "d")
    retrained = [saved - restored_step for (_, _, saved), restored_step in zip(stops, saved_steps, strict=False)]
    figure("steps_retrained_max", max(retrained, default=0), "d")


def _stop_steps(log: Path) -> list[tuple[str, int, int]]:
    return [(name, int(received), int(saved)) for name, received, saved in STOPPED.findall(log.read_text())]


def _global_step(checkpoint: Path) -> int:
    import torch

    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        raise SystemExit("no sbatch on PATH: start a cluster with .ci/slurm-up.sh")
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    figure("cpu_cores", os.cpu_count() or 0, "d")
    figure("load_average_1min", os.getloadavg()[0], ".2f")
    with tempfile.TemporaryDirectory() as scratch:
        submission(Path(scratch), args.points, env)
        requeues(Path(scratch), args.steps, env)


if __name__ == "__main__":
    main()
