"""The study launcher's own time per point (submit, job start, lock, bookkeeping) next to the point's run time.

    python bench/study_overhead.py [--study configs/studies/digits_examples_per_task.yaml] [--values 2]

Launches the study (its first ``--values`` grid values, every arm; local executor, one point at a time)
into a temporary root and splits the wall time of ``python -m studies launch`` with the timestamps the
launcher and the jobs record (``launches.jsonl``, each point's ``study/state.json``):

- ``launcher_startup_s``: process start to the first submission (Python, torch, the study file), once per launch;
- per point, ``submit_to_job_s`` (submitit starts the job's processes, unpickles it), ``job_to_step_s``
  (lock, state file), ``step_end_to_next_s`` (the job ends, the launcher notices and submits the next one);
- ``overhead_per_point_s`` (their sum) against ``point_run_s`` (the ``run.py`` steps themselves), and
  ``overhead_share``. Target: ≤ 2 s per point or ≤ 5 % of a tiny point.
"""

from __future__ import annotations

import argparse
import json
import os
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


def reduced_study(study: Path, values: int, directory: Path) -> Path:
    """The study with only the first ``values`` values of each grid axis."""
    data = yaml.safe_load(study.read_text())
    data["grid"] = {axis: levels[:values] for axis, levels in (data.get("grid") or {}).items()}
    data.setdefault("name", study.stem)
    path = directory / study.name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, default=ROOT / "configs/studies/digits_examples_per_task.yaml")
    parser.add_argument("--values", type=int, default=2, help="grid values per axis to launch (default 2)")
    args = parser.parse_args()
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    figure("cpu_cores", os.cpu_count() or 0, "d")
    figure("load_average_1min", os.getloadavg()[0], ".2f")
    with tempfile.TemporaryDirectory() as scratch:
        study = reduced_study(args.study, args.values, Path(scratch))
        root = Path(scratch) / "root"
        command = [sys.executable, "-m", "studies", "launch", str(study), "--root", str(root)]
        started = time.time()
        subprocess.run([*command, "--executor", "local", "--max-parallel", "1"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        ended = time.time()
        name = yaml.safe_load(study.read_text())["name"]
        submissions = [json.loads(line) for line in (root / name / "launches.jsonl").read_text().splitlines()]
        states = {
            s["point"]: json.loads((root / name / s["point"] / "study" / "state.json").read_text()) for s in submissions
        }
    submitted = [s["submitted"] for s in submissions]
    next_times = [*submitted[1:], ended]
    submit_to_job, job_to_step, end_to_next, run = [], [], [], []
    for entry, next_time in zip(submissions, next_times, strict=True):
        timings = states[entry["point"]]["timings"]
        steps = sorted({key.rsplit("_", 1)[0] for key in timings if key.endswith("_started") and key != "job_started"})
        first = min(timings[f"{s}_started"] for s in steps)
        last = max(timings[f"{s}_ended"] for s in steps)
        submit_to_job.append(timings["job_started"] - entry["submitted"])
        job_to_step.append(first - timings["job_started"])
        end_to_next.append(next_time - last)
        run.append(sum(timings[f"{s}_ended"] - timings[f"{s}_started"] for s in steps))
    count = len(submissions)
    overhead = [a + b + c for a, b, c in zip(submit_to_job, job_to_step, end_to_next, strict=True)]
    figure("points", count, "d")
    figure("launch_wall_s", ended - started, ".1f")
    figure("launcher_startup_s", submitted[0] - started, ".2f")
    figure("submit_to_job_s", sum(submit_to_job) / count, ".3f")
    figure("job_to_step_s", sum(job_to_step) / count, ".3f")
    figure("step_end_to_next_s", sum(end_to_next) / count, ".3f")
    figure("overhead_per_point_s", sum(overhead) / count, ".3f")
    figure("point_run_s", sum(run) / count, ".2f")
    figure("overhead_share", sum(overhead) / sum(run), ".4f")
    met = sum(overhead) / count <= 2.0 or sum(overhead) / sum(run) <= 0.05
    figure("target_met", "yes" if met else "no")


if __name__ == "__main__":
    main()
