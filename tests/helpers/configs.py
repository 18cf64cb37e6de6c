"""The shipped configs as tests use them: a base file and the overlays given after it.

``run.py`` layers ``--config`` files itself (jsonargparse); a test that edits a config before a run reads the
layers with ``merged``, which merges them the way the shipped files are written for: mappings key by key,
anything else (a number, a list) replaced by the later file. ``tests/test_config_layers.py`` checks that this
agrees with ``run.py`` on every shipped run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studies.points import merged_config
from tests.helpers.cli import ROOT

CONFIGS = ROOT / "configs"
DIGITS = CONFIGS / "linear" / "digits.yaml"
#: The digits models trained end to end, and watched while they train: base first.
DIGITS_SGD = (DIGITS, CONFIGS / "linear" / "digits_sgd.yaml")
DIGITS_MONITORED = (*DIGITS_SGD, CONFIGS / "linear" / "digits_monitored.yaml")
#: The GPT-2 language models' ``--config`` files under ``configs/``: each bilingual one is an overlay over its
#: monolingual base.
GPT2_LANGUAGE_MODELS: dict[str, tuple[str, ...]] = {
    "tiny_monolingual": ("gpt2/tiny_monolingual.yaml",),
    "tiny_bilingual": ("gpt2/tiny_monolingual.yaml", "gpt2/tiny_bilingual.yaml"),
    "monolingual": ("gpt2/monolingual.yaml",),
    "bilingual": ("gpt2/monolingual.yaml", "gpt2/bilingual.yaml"),
}


def gpt2_configs(*names: str) -> tuple[Path, ...]:
    """``configs/gpt2/<name>.yaml`` of each name in order, a bilingual model's monolingual base before it."""
    return tuple(
        CONFIGS / config for name in names for config in GPT2_LANGUAGE_MODELS.get(name, (f"gpt2/{name}.yaml",))
    )


def config_args(paths: tuple[Path, ...] | list[Path]) -> list[str]:
    """``--config A --config B ...``: the layers in order."""
    return [argument for path in paths for argument in ("--config", str(path))]


def merged(*paths: Path) -> dict[str, Any]:
    """The YAML of ``paths`` layered in order (see the module docstring), as a study layers an arm's files."""
    return merged_config([str(path) for path in paths], {})
