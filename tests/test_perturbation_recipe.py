"""The manual's "your own perturbation" recipe (docs/extending.md), run as written: one class in one file is swept on
a real GPT-2, restored bit for bit, and shown by plots, the W&B dashboard and the config reference under its own
declarations."""

from __future__ import annotations

import json
import re
import sys
import types

import torch

from cognitive_reserve import PERTURBATIONS, SweepGrid, run_sweep
from cognitive_reserve.plots import LEVEL_LABELS
from config_reference import perturbation_table
from tests.helpers.cli import ROOT
from tests.helpers.tiny_gpt2 import TinyGPT2
from tracking import dashboard


def recipe() -> str:
    text = (ROOT / "docs" / "extending.md").read_text("utf-8")
    (code,) = re.findall(r"<!-- example: your-own-perturbation -->\n```python\n(.*?)```", text, re.DOTALL)
    return code


def test_the_recipe_registers_a_perturbation_that_sweeps_a_gpt2_and_restores_it(tmp_path):
    torch.manual_seed(0)
    gpt2 = TinyGPT2().eval()
    before = {name: p.detach().clone() for name, p in gpt2.named_parameters()}
    tokens = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    seen: list[dict[str, torch.Tensor]] = []

    def evaluate() -> dict[str, float]:
        seen.append({name: p.detach().clone() for name, p in gpt2.named_parameters()})
        return {"loss": float(gpt2.model(input_ids=tokens, labels=tokens).loss)}

    try:
        module = sys.modules.setdefault("recipe", types.ModuleType("recipe"))  # the recipe's own file, imported
        exec(compile(recipe(), "extending.md", "exec", dont_inherit=True), module.__dict__)
        assert LEVEL_LABELS["output_channel_deletion"] == "deleted fraction of output channels"
        assert (
            "| `output_channel_deletion` | row/column | dead output lines of a weight matrix |" in perturbation_table()
        )
        axes = dashboard_x_titles(tmp_path / "dash.json", "output_channel_deletion", "random_deletion")
        subject = gpt2.robustness_subjects([])[0]
        subject.evaluate = evaluate
        rows = run_sweep(subject, [SweepGrid("output_channel_deletion", [0.0, 0.5], trials=2)], seed=0)
    finally:
        PERTURBATIONS.pop("output_channel_deletion", None)
        sys.modules.pop("recipe", None)
    assert axes == {
        "robustness/test/output_channel_deletion/level": {"deleted fraction of output channels"},
        "robustness/test/random_deletion/level": {"deletion probability p"},
    }
    assert [(r.level, r.trial) for r in rows] == [(0.0, 0), (0.5, 0), (0.5, 1)]
    assert rows[1].value > rows[0].value
    c_attn = "model.transformer.h.0.attn.c_attn.weight"
    lost = ~seen[1][c_attn].any(dim=0)  # GPT-2's Conv1D stores (in, out): an output channel is a column
    assert 0.3 < lost.double().mean() < 0.7
    assert torch.equal(seen[1][c_attn][:, ~lost], before[c_attn][:, ~lost])
    assert not torch.equal(seen[1][c_attn], seen[2][c_attn])  # seeded per trial
    assert all(torch.equal(p, before[name]) for name, p in gpt2.named_parameters())


def dashboard_x_titles(out, *perturbations: str) -> dict[str, set[str]]:
    """``python -m tracking.dashboard --perturbations ... --dry-run OUT`` (in this interpreter, where the recipe's
    perturbation is registered): the x-axis titles of the test-stage curve panels of the workspace spec, by x key."""
    dashboard.main(["--entity", "e", "--project", "p", "--group", "gpt2-tiny", "--dry-run", str(out),
                    "--perturbations", *perturbations])  # fmt: skip
    titles: dict[str, set[str]] = {}
    for section in json.loads(out.read_text("utf-8"))["workspace"]["spec"]["section"]["panelBankConfig"]["sections"]:
        for panel in section["panels"]:
            x = panel["config"].get("xAxis", "")
            if x.startswith("robustness/test/"):
                titles.setdefault(x, set()).add(panel["config"]["xAxisTitle"])
    return titles
