"""``python -m studies {launch,status,report,wandb-sweep} STUDY.yaml ...`` (see ``docs/studies.md``).

Bad input (the study file, a flag) prints one line ``error: field=value: reason`` and exits with status 2
before anything is launched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import declarations
from studies.spec import ExecutorSettings, build, load_study

DEFAULT_ROOT = Path("runs/studies")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m studies", description=__doc__.split("\n\n")[0])
    commands = main.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("study", help="the study file (configs/studies/*.yaml)")
        sub.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where point directories go (runs/studies)")
        return sub

    launch = command("launch", "run every point that is missing (SLURM where available, else local processes)")
    launch.add_argument(
        "--executor",
        choices=("auto", "local", "slurm"),
        default="auto",
        help="auto (the default): SLURM where sbatch is on PATH, else local processes",
    )
    launch.add_argument("--max-parallel", type=int, help="points running at once (default: the study's executor)")
    launch.add_argument("--dry-run", action="store_true", help="print the points and their commands, run nothing")
    launch.add_argument("--retry-failed", action="store_true", help="run failed points again too")
    slurm = launch.add_argument_group("SLURM (override the study's executor settings)")
    slurm.add_argument("--partition", help="SLURM partition")
    slurm.add_argument("--gpus-per-node", type=int, help="GPUs per node of one point")
    slurm.add_argument("--tasks-per-node", type=int, help="tasks per node: one per GPU for DDP points")
    slurm.add_argument("--nodes", type=int, help="nodes per point")
    slurm.add_argument("--timeout-min", type=int, help="time limit of one point's job, in minutes")
    slurm.add_argument(
        "--slurm-option", action="append", default=[], metavar="slurm_NAME=VALUE", help="a further submitit option"
    )
    command("status", "one row per point: state, wall time, job id, error line")
    report = command("report", "per group: the comparison over seeds, Table 1, the cross-over against scale")
    report.add_argument("--out", type=Path, required=True, help="directory for the CSVs and figures")
    report.add_argument("--no-wandb", action="store_true", help="write the files only (no W&B run)")
    report.add_argument("--wandb-project", default="cognitive-reserve", help="W&B project of the report run")
    sweep = command("wandb-sweep", "the equivalent W&B grid sweep(s), YAML on stdout")
    sweep.add_argument("--arm", help="only this arm's sweep (a W&B sweep runs one command: one sweep per arm)")
    return main


def run(argv: list[str] | None = None) -> int:
    """The command's exit status; ``ConfigError`` becomes one line and status 2."""
    args = parser().parse_args(argv)
    try:
        if args.command == "launch" and args.max_parallel is not None and args.max_parallel < 1:
            raise ConfigError("max_parallel", args.max_parallel, "must be an integer >= 1")
        study = load_study(args.study)
        if args.command == "launch":
            from studies.launch import dry_run, launch

            study.executor = executor_with_flags(study.executor, args)

            if args.dry_run:
                dry_run(study, args.root, args.executor)
                return 0
            return launch(study, args.root, args.executor, args.max_parallel, args.retry_failed, args.study)
        if args.command == "status":
            from studies.status import show_status

            return show_status(study, args.root)
        if args.command == "report":
            from studies.report import report

            return report(study, args.root, args.out, wandb_project=None if args.no_wandb else args.wandb_project)
        from studies.wandb_sweep import print_sweeps

        return print_sweeps(study, args.root, args.arm)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def executor_with_flags(settings: ExecutorSettings, args: argparse.Namespace) -> ExecutorSettings:
    """The study's executor settings with the launch flags on top, checked like the file's."""
    values = {d.name: getattr(settings, d.name) for d in declarations(ExecutorSettings)}
    for name in ("partition", "gpus_per_node", "tasks_per_node", "nodes", "timeout_min"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    for option in args.slurm_option:
        key, sep, text = option.partition("=")
        if not sep:
            raise ConfigError("executor.slurm", option, "expected slurm_NAME=VALUE")
        values["slurm"] = {**values["slurm"], key: yaml.safe_load(text)}
    return build(ExecutorSettings, "executor", values)


if __name__ == "__main__":
    sys.exit(run())
