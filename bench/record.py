"""Run one benchmark and keep its output, with the command, the machine and its load, in ``bench/results/``.

    python bench/record.py sweep_overhead                      # -> bench/results/sweep_overhead.txt
    python bench/record.py adaptive_trials --as adaptive_trials_trained -- --init-from runs/.../last.ckpt

The file starts with ``# key: value`` lines (command, when, machine, load average before and after), then
the script's own ``name: value`` lines. ``python bench/results_table.py`` builds the manual's table from them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="a script of bench/, without .py")
    parser.add_argument("--as", dest="name", help="results file name (default: the script's name)")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # the script's own arguments come after --
    args, script_args = parser.parse_args(argv[:split]), argv[split + 1 :]
    command = " ".join(["python", f"bench/{args.script}.py", *script_args])
    header = {
        "command": command,
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} vCPUs ({cpu_model()}), {platform.system()} {platform.machine()}",
        "load_before": load(),
    }
    script = [sys.executable, str(BENCH / f"{args.script}.py"), *script_args]
    done = subprocess.run(script, cwd=BENCH.parent, capture_output=True, text=True)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        sys.exit(f"error: {command} failed with exit status {done.returncode}; nothing recorded")
    header["load_after"] = load()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{args.name or args.script}.txt"
    path.write_text("".join(f"# {key}: {value}\n" for key, value in header.items()) + done.stdout)
    print(f"{path.relative_to(BENCH.parent)}:\n{path.read_text()}")


if __name__ == "__main__":
    main()
