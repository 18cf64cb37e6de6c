"""The resolved config of every shipped run (``run.py fit --config ... --print_config``, what the run saves as
``config.yaml``), kept as golden files under ``tests/fixtures/resolved_configs/`` so a change to the YAML layers
that changes a run shows up in ``tests/test_config_layers.py``.

    python -m tests.helpers.resolved_configs            # rewrite every golden file (after a deliberate change)
    python -m tests.helpers.resolved_configs gpt2/tiny_bilingual   # only these runs
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

import yaml

from tests.helpers.cli import ROOT
from tests.helpers.configs import GPT2_LANGUAGE_MODELS

GOLDEN = ROOT / "tests" / "fixtures" / "resolved_configs"
CONFIGS = ROOT / "configs"
#: The runs of the overlays (a config file without a model of its own), each named after the golden file (under
#: GOLDEN, less ``.yaml``), with its ``--config`` files in order. A config with a model is a run by itself.
OVERLAID: dict[str, tuple[str, ...]] = {
    "linear/digits_aligned": ("linear/digits.yaml", "linear/digits_aligned.yaml"),
    "linear/digits_equal_per_task": ("linear/digits.yaml", "linear/digits_equal_per_task.yaml"),
    "linear/digits_sgd": ("linear/digits.yaml", "linear/digits_sgd.yaml"),
    "linear/digits_monitored": ("linear/digits.yaml", "linear/digits_sgd.yaml", "linear/digits_monitored.yaml"),
    "linear/digits_neurons": ("linear/digits.yaml", "linear/digits_neurons.yaml"),
    "gpt2/tiny_bilingual": GPT2_LANGUAGE_MODELS["tiny_bilingual"],
    "gpt2/bilingual": GPT2_LANGUAGE_MODELS["bilingual"],
    **{
        f"gpt2/{size}{overlay}_{language}": (*GPT2_LANGUAGE_MODELS[size + language], f"gpt2/{size}{overlay}.yaml")
        for size in ("tiny_", "")
        for overlay in ("layers", "structural")
        for language in ("monolingual", "bilingual")
    },
    **{
        f"gpt2/figure5/{branch}": (f"gpt2/figure5/{base}.yaml", f"gpt2/figure5/{branch}.yaml")
        for base, prefix in (("tiny_base", "tiny_"), ("base", ""))
        for branch in (f"{prefix}continue_monolingual", f"{prefix}switch_bilingual")
    },
    **{
        f"glue/{task}": ("glue/base.yaml", f"glue/{task}.yaml")
        for task in ("cola", "mrpc", "qnli", "qqp", "rte", "sst2")
    },
}


def shipped_configs() -> list[Path]:
    """Every config file of a run (the study files under ``configs/studies`` are not)."""
    return sorted(path for path in CONFIGS.rglob("*.yaml") if path.parent.name != "studies")


def has_model(path: Path) -> bool:
    model = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("model")
    return isinstance(model, dict) and "class_path" in model


def runs() -> dict[str, tuple[str, ...]]:
    """Every shipped run: each config with a model by itself (named after its path), and ``OVERLAID``."""
    alone = {
        str(path.relative_to(CONFIGS).with_suffix("")): (str(path.relative_to(CONFIGS)),) for path in shipped_configs()
    }
    return {**{name: configs for name, configs in alone.items() if has_model(CONFIGS / configs[0])}, **OVERLAID}


def resolved(configs: tuple[str, ...]) -> str:
    """What ``run.py fit --config C1 --config C2 ... --print_config`` prints, less its library-version line."""
    from run import main

    arguments = ["fit"] + [f"--config={ROOT / 'configs' / config}" for config in configs] + ["--print_config"]
    out, argv = io.StringIO(), sys.argv
    sys.argv = argv[:1]  # LightningCLI warns when it is given arguments besides the command line's
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(arguments)
    finally:
        sys.argv = argv
    return "".join(line for line in out.getvalue().splitlines(keepends=True) if not line.startswith("# lightning"))


def golden(run: str) -> Path:
    return GOLDEN / f"{run}.yaml"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    every = runs()
    parser.add_argument("runs", nargs="*", metavar="RUN", help=f"default: every run ({', '.join(every)})")
    chosen = parser.parse_args(argv).runs or list(every)
    if unknown := [run for run in chosen if run not in every]:
        parser.error(f"no such run: {', '.join(unknown)}")
    for run in chosen:
        golden(run).parent.mkdir(parents=True, exist_ok=True)
        golden(run).write_text(resolved(every[run]), encoding="utf-8")
        print(f"wrote {golden(run).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
