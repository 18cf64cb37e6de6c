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

from tests.helpers.cli import ROOT

GOLDEN = ROOT / "tests" / "fixtures" / "resolved_configs"
#: One run per golden file: its name (the file under GOLDEN, less ``.yaml``) and its ``--config`` files, in order.
RUNS: dict[str, tuple[str, ...]] = {
    "linear/digits": ("linear/digits.yaml",),
    "linear/digits_aligned": ("linear/digits.yaml", "linear/digits_aligned.yaml"),
    "linear/digits_equal_per_task": ("linear/digits.yaml", "linear/digits_equal_per_task.yaml"),
    "linear/digits_sgd": ("linear/digits.yaml", "linear/digits_sgd.yaml"),
    "linear/digits_monitored": ("linear/digits.yaml", "linear/digits_sgd.yaml", "linear/digits_monitored.yaml"),
    "linear/gaussian_tasks": ("linear/gaussian_tasks.yaml",),
    "linear/mnist": ("linear/mnist.yaml",),
    "linear/cifar10": ("linear/cifar10.yaml",),
    "linear/newsgroups": ("linear/newsgroups.yaml",),
    "gpt2/tiny_monolingual": ("gpt2/tiny_monolingual.yaml",),
    "gpt2/tiny_bilingual": ("gpt2/tiny_bilingual.yaml",),
    "gpt2/tiny_layers_monolingual": ("gpt2/tiny_monolingual.yaml", "gpt2/tiny_layers.yaml"),
    "gpt2/tiny_layers_bilingual": ("gpt2/tiny_bilingual.yaml", "gpt2/tiny_layers.yaml"),
    "gpt2/monolingual": ("gpt2/monolingual.yaml",),
    "gpt2/bilingual": ("gpt2/bilingual.yaml",),
    "gpt2/layers_monolingual": ("gpt2/monolingual.yaml", "gpt2/layers.yaml"),
    "gpt2/layers_bilingual": ("gpt2/bilingual.yaml", "gpt2/layers.yaml"),
    "gpt2/figure5/tiny_base": ("gpt2/figure5/tiny_base.yaml",),
    "gpt2/figure5/tiny_continue_monolingual": (
        "gpt2/figure5/tiny_base.yaml",
        "gpt2/figure5/tiny_continue_monolingual.yaml",
    ),
    "gpt2/figure5/tiny_switch_bilingual": ("gpt2/figure5/tiny_base.yaml", "gpt2/figure5/tiny_switch_bilingual.yaml"),
    "gpt2/figure5/base": ("gpt2/figure5/base.yaml",),
    "gpt2/figure5/continue_monolingual": ("gpt2/figure5/base.yaml", "gpt2/figure5/continue_monolingual.yaml"),
    "gpt2/figure5/switch_bilingual": ("gpt2/figure5/base.yaml", "gpt2/figure5/switch_bilingual.yaml"),
    "glue/tiny": ("glue/tiny.yaml",),
    **{f"glue/{task}": ("glue/base.yaml", f"glue/{task}.yaml") for task in ("cola", "mrpc", "qnli", "qqp", "rte")},
    "glue/sst2": ("glue/base.yaml", "glue/sst2.yaml"),
}


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
    parser.add_argument("runs", nargs="*", metavar="RUN", help=f"default: every run ({', '.join(RUNS)})")
    runs = parser.parse_args(argv).runs or list(RUNS)
    if unknown := [run for run in runs if run not in RUNS]:
        parser.error(f"no such run: {', '.join(unknown)}")
    for run in runs:
        golden(run).parent.mkdir(parents=True, exist_ok=True)
        golden(run).write_text(resolved(RUNS[run]), encoding="utf-8")
        print(f"wrote {golden(run).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
