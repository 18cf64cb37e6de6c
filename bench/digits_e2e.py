"""End-to-end wall time of the linear digits experiment (issue #6: 7).

    python bench/digits_e2e.py [--threads 1 2] [--repeats 2]

Runs ``python run.py fit --config configs/linear/digits.yaml`` (12 models, 4 248 sweep trials, W&B
offline) in a fresh process with ``OMP_NUM_THREADS`` set to each ``--threads`` value. Figures:
``digits_fit_s_<n>threads`` (whole command, best of ``--repeats``), ``digits_sweep_s_<n>threads``
(the sweep alone: from its fingerprint file to its summary CSV), and ``python_imports_s``
(``python -c "import run"``: the part of every command spent importing torch, Lightning, ...).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import OFFLINE_ENV, ROOT, figure


def wall(command: list[str], threads: int) -> float:
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"cpu_cores: {os.cpu_count()}")
    figure("python_imports_s", min(wall([sys.executable, "-c", "import run"], 1) for _ in range(args.repeats)))
    for threads in args.threads:
        fits, sweeps = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                command = [sys.executable, "run.py", "fit", "--config", "configs/linear/digits.yaml"]
                fits.append(wall([*command, f"--trainer.default_root_dir={tmp}"], threads))
                robustness = Path(tmp) / "robustness"
                started = (robustness / "sweep_fit_epoch000.csv.fingerprint").stat().st_mtime
                sweeps.append((robustness / "sweep_fit_epoch000_summary.csv").stat().st_mtime - started)
        figure(f"digits_fit_s_{threads}threads", min(fits))
        figure(f"digits_sweep_s_{threads}threads", min(sweeps))


if __name__ == "__main__":
    main()
