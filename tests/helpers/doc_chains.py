"""The manual's command chains, extracted from the pages and run in order in a fresh folder.

A command block the manual promises will run is marked with ``<!-- chain: NAME -->`` on the line before its
fenced ``bash`` block. Pages are read in the order of the site's navigation (``mkdocs.yml``), so the chains
run in the order a reader meets them. Each line of a block (``\\``-continued lines joined, comments dropped)
is one command, run by bash in the folder with the venv's ``python`` first on ``PATH`` (a user who ran
``source .venv/bin/activate``), as a user without W&B credentials and with a fresh home folder.

    python -m tests.helpers.doc_chains DIR     # every chain at full size in DIR; prints each command's wall time

The tests run the same commands on copies of the tiny Figure 5 configs with every step count divided by ``SHRINK``
(nothing else changes), to keep the suite short; every other config runs as it is (the tiny GLUE run starts from
the tiny language model exactly as documented).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.helpers.cli import OFFLINE_ENV, ROOT

MARKER = re.compile(r"^<!-- chain: ([\w-]+) -->\n```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)
#: The chains the manual marks, in the order of the site's navigation.
CHAINS = ("linear-digits", "gpt2-tiny", "figure5-tiny", "table1-tiny", "glue-tiny", "dashboard-dry-run")
#: Step counts of the tiny Figure 5 configs are divided by this in the tests (base 200 steps -> 40, branches 400 -> 80).
SHRINK = 5
STEP_KEYS = ("max_steps", "val_check_interval", "every_n_train_steps", "every_n_steps", "lr_schedule_steps")


@dataclass
class Command:
    chain: str
    text: str


@dataclass
class Done:
    command: Command
    seconds: float
    output: str
    created: set[str] = field(default_factory=set)  # files (relative to the folder) this command created


@dataclass
class ChainRun:
    folder: Path
    done: list[Done]

    def of(self, fragment: str) -> Done:
        """The one command whose text contains ``fragment``."""
        (match,) = [d for d in self.done if fragment in d.command.text]
        return match


def site_pages(root: Path = ROOT) -> list[Path]:
    """The Markdown files of the site's navigation, in order (README.md stands for the home page)."""

    def walk(entries) -> list[str]:
        found = []
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            found += walk(value) if isinstance(value, list) else [value]
        return found

    nav = walk(yaml.safe_load((root / "mkdocs.yml").read_text("utf-8"))["nav"])
    return [root / "README.md" if page == "index.md" else root / "docs" / page for page in nav]


def documented_commands(root: Path = ROOT) -> list[Command]:
    """Every command of the marked blocks, in the order of the navigation."""
    commands = []
    for page in site_pages(root):
        for chain, block in MARKER.findall(page.read_text("utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("  #")[0].strip()
                if line and not line.startswith("#"):
                    commands.append(Command(chain, " ".join(line.split())))
    return commands


def fresh_folder(folder: Path, shrink: int = 1) -> Path:
    """A folder laid out like a clone (``run.py``, ``configs/``), the tiny Figure 5 configs shrunk ``shrink`` times."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.py").symlink_to(ROOT / "run.py")
    shutil.copytree(ROOT / "configs", folder / "configs")
    if shrink > 1:
        for path in (folder / "configs" / "gpt2" / "figure5").glob("tiny_*.yaml"):
            path.write_text(yaml.safe_dump(shrunk(yaml.safe_load(path.read_text("utf-8")), shrink), allow_unicode=True))
    return folder


def shrunk(config: dict, factor: int) -> dict:
    """``config`` with every step count divided by ``factor`` (a ``step=N.ckpt`` checkpoint path too)."""

    def visit(node):
        if isinstance(node, dict):
            return {k: v // factor if k in STEP_KEYS and isinstance(v, int) else visit(v) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(item) for item in node]
        if isinstance(node, str):
            return re.sub(r"step=(\d+)\.ckpt", lambda m: f"step={int(m.group(1)) // factor}.ckpt", node)
        return node

    return visit(config)


def environment(home: Path) -> dict[str, str]:
    """A new user's shell: the venv active, no W&B credentials or mode, nothing from the network."""
    env = {**os.environ, **OFFLINE_ENV, "HOME": str(home), "PYTHONPATH": str(ROOT)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_SERVICE", "WANDB_DIR"):
        env.pop(name, None)
    return env


def run_chains(
    folder: Path, commands: list[Command], env: dict[str, str], report: Callable[[Done], None] = lambda done: None
) -> ChainRun:
    """Run ``commands`` in order in ``folder``; stop with the command's output at the first failure."""
    done = []
    for command in commands:
        before = files_under(folder)
        started = time.perf_counter()
        result = subprocess.run(
            ["bash", "-c", command.text], cwd=folder, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise AssertionError(f"[{command.chain}] {command.text} -> {result.returncode}\n{result.stdout[-4000:]}")
        done.append(Done(command, seconds, result.stdout, files_under(folder) - before))
        report(done[-1])
    return ChainRun(folder, done)


def run_in_fresh_folder(folder: Path, home: Path) -> ChainRun:
    """What the tests check: every documented chain, in order, in ``folder`` (tiny Figure 5 configs shrunk)."""
    return run_chains(fresh_folder(folder, SHRINK), documented_commands(), environment(home))


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the manual's command chains at full size; print timings.")
    parser.add_argument("folder", type=Path, help="a new folder to run them in")
    parser.add_argument("--shrink", type=int, default=1, help="divide the tiny Figure 5 step counts by this")
    args = parser.parse_args()
    folder = fresh_folder(args.folder, args.shrink)
    home = folder.with_name(folder.name + ".home")
    home.mkdir()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    run_chains(folder, documented_commands(), environment(home), report=print_timing)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def print_timing(done: Done) -> None:
    print(f"{done.seconds:7.1f} s  [{done.command.chain}] {done.command.text}", flush=True)


if __name__ == "__main__":
    main()
