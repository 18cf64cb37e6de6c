"""What the study tests share: study files, a fast digits config, synthetic sweep outputs, argv read back."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from cognitive_reserve.io import SweepCsvWriter
from cognitive_reserve.sweep import SweepRow
from tests.helpers.cli import OFFLINE_ENV, ROOT
from tests.helpers.configs import DIGITS_SGD, merged

SHIPPED = sorted((ROOT / "configs" / "studies").glob("*.yaml"))


def write_study(path: Path, study: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def fast_digits_config(directory: Path, epochs: int = 40, pace_s: float = 0.0, name: str = "fast_digits") -> Path:
    """``digits_sgd.yaml`` (over ``digits.yaml``) made small: two models (T = 1, 5), ``epochs`` full-batch Adam
    steps (a checkpoint after each), a small sweep at the end of fit; with ``pace_s``, a pause after every step."""
    config = merged(*DIGITS_SGD)
    config["trainer"]["max_epochs"] = epochs
    config["data"]["init_args"]["task_grid"] = [1, 5]
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"].endswith("PerturbationSweep"):
            callback["init_args"]["progress"] = False
            callback["init_args"]["perturbations"] = {
                "gaussian_noise": {"levels": [0.0, 0.1, 0.2], "trials": 4},
                "magnitude_pruning": {"levels": [0.0, 0.5]},
            }
    if pace_s:
        config["trainer"]["callbacks"].append(paced(pace_s))
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def paced(seconds: float) -> dict[str, Any]:
    """The config entry of ``tests.helpers.signals.PacedSteps``."""
    return {"class_path": "tests.helpers.signals.PacedSteps", "init_args": {"seconds": seconds}}


def studies_env() -> dict[str, str]:
    """The environment of a ``python -m studies`` process: offline, one thread, this tree's packages first."""
    env = {**os.environ, **OFFLINE_ENV, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "WANDB_INIT_TIMEOUT": "300"}
    env.pop("WANDB_SERVICE", None)
    return env


def studies_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "studies", *args]


def run_studies(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m studies ARGS`` from the repository root."""
    return subprocess.run(
        studies_command(*args), cwd=ROOT, env=studies_env(), capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def write_sweep(path: Path, model: str, shift: float, slope: float, seed_offset: int = 0) -> Path:
    """A synthetic sweep CSV: deletion levels 0…0.4, 6 paired trials, ``bits_per_byte_en`` = 1 + ``shift`` +
    ``slope`` × level + a little noise that depends on the trial and ``seed_offset`` (a training seed)."""
    rows = []
    for level in (0.0, 0.1, 0.2, 0.3, 0.4):
        for trial in range(6):
            noise = ((trial * 7 + seed_offset * 3) % 5 - 2) * 0.004 * (level > 0)
            value = 1.0 + shift + slope * level + noise
            rows.append(SweepRow(model, None, "random_deletion", level, trial, 1000 + trial, "bits_per_byte_en", value))
    path.parent.mkdir(parents=True, exist_ok=True)
    with SweepCsvWriter(path) as writer:
        writer.write(rows)
    return path


def expand_agent_command(command: list[str], args: dict[str, Any]) -> list[list[str]]:
    """The ``run.py`` argv(s) ``wandb agent`` runs for one combination of the sweep's parameters: its own
    expansion of the arguments (``create_sweep_command_args``) and its substitution of the macros
    (``wandb_agent.Agent._command_run``), then ``sh -c`` split the way the shell would."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in args.items()}})
    sweep_vars.update(interpreter=["python"], program=["run.py"], env=["/usr/bin/env"])
    argv: list[str] = []
    for chunk in create_sweep_command(list(command)):
        chunk = str(chunk)
        macro = chunk.startswith("${") and chunk.endswith("}")
        argv += (sweep_vars.get(chunk[2:-1]) or []) if macro else [chunk]
    if argv[:2] == ["/bin/sh", "-c"]:
        script, positional = argv[2], argv[4:]
        steps = [shlex.split(part) for part in script.split(" && ")]
        return [_drop_env([t for tok in step for t in (positional if tok == "$@" else [tok])]) for step in steps]
    return [argv[1:] if argv[0] == "/usr/bin/env" else argv]


def _drop_env(tokens: list[str]) -> list[str]:
    """``env -u NAME ... python run.py ...`` → ``python run.py ...``."""
    return tokens[tokens.index("python") :]


INTERPOLATION = re.compile(r"\$\{(\.+)([A-Za-z_][\w.]*)\}")


def resolved_run(argv: list[str]) -> tuple[str, list[str], dict[str, Any]]:
    """``(subcommand, config files, {key: value})`` of a ``[python] run.py ...`` argv: flags read as YAML, later
    ones winning, OmegaConf's relative interpolations (``${..key}``: one dot per level of the key that holds
    it, one more inside a list) replaced by the value of ``key`` (itself resolved first)."""
    argv = argv[argv.index("run.py") + 1 :]
    step, configs, raw = argv[0], [], {}
    tokens = iter(argv[1:])
    for token in tokens:
        if token == "--config":
            configs.append(next(tokens))
        else:
            key, _, value = token.removeprefix("--").partition("=")
            raw[key] = value

    def substitute(key: str, text: str) -> str:
        def one(match: re.Match) -> str:
            depth = len(key.split("."))
            assert len(match[1]) in (depth, depth + 1), f"{key}: {match[0]} is not relative to the subcommand"
            return str(yaml.safe_load(substitute(match[2], raw[match[2]])))

        return INTERPOLATION.sub(one, text)

    return step, configs, {key: yaml.safe_load(substitute(key, value)) for key, value in raw.items()}


def tiny_gpt2_config(
    directory: Path, corpus: dict[str, Path], max_steps: int, val_every: int, pace_s: float = 0.0,
    callbacks: tuple[dict[str, Any], ...] = (), name: str = "tiny_gpt2",
) -> Path:  # fmt: skip
    """``tiny_monolingual.yaml`` made small: a 32-wide model on the generated ``corpus`` (16 training blocks: 2
    batches an epoch), ``max_steps`` steps with a validation (and its sweep) every ``val_every``, monitors
    every 4 steps, a small test sweep, no W&B; with ``pace_s``, a pause after every step (a long, cheap run);
    ``callbacks`` added (``{class_path, init_args}``). Written to ``<directory>/<name>.yaml``."""
    config = yaml.safe_load((ROOT / "configs" / "gpt2" / "tiny_monolingual.yaml").read_text())
    trainer = config["trainer"]
    trainer.update(max_steps=max_steps, val_check_interval=val_every, logger=False, enable_progress_bar=False)
    for callback in trainer["callbacks"]:
        args = callback.setdefault("init_args", {})
        if callback["class_path"].endswith("PerturbationSweep"):
            args["progress"] = False
            if args.get("at_test"):
                args["perturbations"] = {"random_deletion": {"levels": [0.0, 0.2], "trials": 2}}
            else:
                args.update(max_eval_samples=8, perturbations={"magnitude_pruning": {"levels": [0.0, 0.3]}})
        if callback["class_path"].endswith(("SpectralMonitor", "WeightNorms")):
            args["every_n_steps"] = 4
    if pace_s:
        trainer["callbacks"].append(paced(pace_s))
    trainer["callbacks"] += list(callbacks)
    config["model"]["init_args"]["gpt2_config"].update(n_embd=32)
    data = config["data"]["init_args"]
    data.update(train_tokens=1024, tokenizer_train_bytes=20_000)
    data["corpora"] = {"en": {split: {"file": str(corpus[f"en.{split}"])} for split in ("train", "validation", "test")}}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
