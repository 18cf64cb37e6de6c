"""``WeightNorms``: the sum of squares of selected weights, per layer and in total (paper Table 1).

Every ``every_n_steps`` optimizer steps, when training starts and at every training epoch end:
``weight_norms/<layer>/sum_sq`` for each layer and ``weight_norms/total/sum_sq``. A parameter's
layer is the first match of ``layer_pattern`` in its name (``h.0`` for GPT-2's
``transformer.h.0.attn.c_attn.weight``); a parameter with no match is a layer of its own.
"""

from __future__ import annotations

from typing import Annotated

import lightning as L
import torch

from callbacks.step_monitor import STRIP_PREFIX, StepMonitor, compile_pattern
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import Field, check_fields, declared
from cognitive_reserve.targets import select_targets
from lightning_modules.gpt2_layout import GPT2_STRIP_PREFIX

TOTAL = "total"


@declared("WeightNorms")
class WeightNorms(StepMonitor):
    """Log ``Σ w²`` of the targeted parameters per layer and in total."""

    prefix = "weight_norms"
    plot_quantity = "sum_sq"
    plot_label = "sum of squared weights"

    def __init__(
        self,
        targets: Annotated[
            str | list[str],
            Field(
                "regular expression(s) on parameter names (`attn`: GPT-2's attention weights and biases, "
                "the parameters the sweeps damage)",
                valid="a regex or list of regexes",
                later="matches at least one parameter: at fit start",
            ),
        ] = "attn",
        every_n_steps: Annotated[int, Field("measure every n optimizer steps (and when training starts)", ge=1)] = 50,
        at_epoch_end: Annotated[bool, Field("also measure at the end of every training epoch")] = True,
        layer_pattern: Annotated[
            str,
            Field(
                "regular expression whose first match in a name is that parameter's layer",
                valid="a valid regex",
                check=compile_pattern,
            ),
        ] = r"\b(h|layers?|blocks?)\.\d+",
        strip_prefix: Annotated[str, STRIP_PREFIX] = GPT2_STRIP_PREFIX,
    ) -> None:
        fields = check_fields(WeightNorms, locals())
        super().__init__(every_n_steps)
        self.targets = targets
        self.at_epoch_end = at_epoch_end
        self.layer_pattern = fields["layer_pattern"]
        self.strip_prefix = fields["strip_prefix"]
        self.layers: dict[str, list[torch.Tensor]] = {}

    @property
    def state_key(self) -> str:
        return self._generate_state_key(targets=self.targets)

    def select(self, pl_module: L.LightningModule) -> None:
        try:
            selected = select_targets(pl_module, self.targets)
        except ConfigError as err:
            raise ConfigError("WeightNorms.targets", err.value, err.reason) from None
        self.layers = {}
        for full_name, param in selected.items():
            name = self.strip_prefix.sub("", full_name, count=1)
            match = self.layer_pattern.search(name)
            layer = match.group(0) if match else name.removesuffix(".weight")
            if layer == TOTAL:
                raise ConfigError("WeightNorms.layer_pattern", self.layer_pattern.pattern, f"names a layer {TOTAL!r}")
            self.layers.setdefault(layer, []).append(param)

    def measure(self, step: int) -> dict[tuple[str, str], torch.Tensor]:
        with torch.no_grad():
            sums = {
                (layer, "sum_sq"): torch.stack([p.detach().double().pow(2).sum() for p in params]).sum()
                for layer, params in self.layers.items()
            }
            sums[(TOTAL, "sum_sq")] = torch.stack(list(sums.values())).sum()
        return sums

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at_epoch_end:
            self.record(trainer)
