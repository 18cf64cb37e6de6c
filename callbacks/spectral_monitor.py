"""``SpectralMonitor``: the largest singular value of selected weight matrices while a model trains.

Paper Figure 5 (σ_max of the attention weights over training). Every ``every_n_steps`` optimizer
steps, for each selected matrix: ``spectral/<name>/sigma_max`` and ``spectral/<name>/fro2``
(``‖W‖_F²``); every ``spectrum_every_n_steps`` steps also the exact ``sigma_1 … sigma_<top_k>``
and, with ``histogram``, the whole spectrum as a W&B histogram ``spectral/<name>/spectrum``.

Selection: the 2-D parameters among those whose names match ``targets``. A fused weight whose
name matches a key of ``split`` is cut into equal parts along its output dimension (columns of a
Hugging Face ``Conv1D``, whose weight is (in, out); rows of ``nn.Linear``), one matrix per part:
GPT-2's ``h.0.attn.c_attn`` becomes ``h.0.attn.c_attn.q``, ``.k``, ``.v``; ``c_proj`` stays whole.

Method ``power`` (default) starts each matrix from one exact SVD, then follows it with
``iterations`` block power steps per measurement (warm start; the basis is saved in checkpoints,
so a resumed run continues it). When the last step still moved an estimate by more than
``tolerance`` (relative) — weights that changed fast, early in training — that matrix gets more
steps, up to ``max_iterations``. All estimates, norms and spectra of one measurement reach the
host in one transfer, plus one per extra round. Method ``exact`` calls ``torch.linalg.svdvals``.

A matrix holding NaN or inf (a run that diverged) is recorded as NaN, never decomposed: the monitor does not
crash a run (``callbacks.FiniteTraining`` stops it, with a line that says why).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from callbacks.step_monitor import STRIP_PREFIX, StepMonitor, compile_pattern
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import Field, check_fields, declared
from cognitive_reserve.spectral import (
    WeightMatrix,
    exact_basis,
    power_iteration,
    singular_values,
    squared_frobenius,
)
from cognitive_reserve.targets import select_targets
from lightning_modules.gpt2_layout import FUSED_QKV, GPT2_STRIP_PREFIX, QKV_PARTS, output_dim

GPT2_FUSED_QKV = {FUSED_QKV: list(QKV_PARTS)}


def compile_split(field: str, split: Any) -> dict[re.Pattern[str], list[str]]:
    """``{name regex: [part names]}`` with each regex compiled."""
    if not isinstance(split, Mapping):
        raise ConfigError(field, split, "give a mapping of regular expressions to lists of part names")
    return {compile_pattern(field, pattern): list(parts) for pattern, parts in split.items()}


@declared("SpectralMonitor")
class SpectralMonitor(StepMonitor):
    """Log σ_max (and ‖W‖_F²) of selected weight matrices every n optimizer steps."""

    prefix = "spectral"
    plot_quantity = "sigma_max"
    plot_label = "largest singular value σ_max"

    def __init__(
        self,
        targets: Annotated[
            str | list[str],
            Field(
                "regular expression(s) on parameter names; the 2-D parameters among the matches are monitored",
                valid="a regex or list of regexes",
                later="matches at least one 2-D parameter: at fit start",
            ),
        ] = r"attn\.c_(attn|proj)\.weight$",
        every_n_steps: Annotated[int, Field("measure every n optimizer steps (and when training starts)", ge=1)] = 50,
        method: Annotated[
            Literal["power", "exact"],
            Field("`power` (warm-started block power iteration, cheap) or `exact` (`svdvals`)"),
        ] = "power",
        iterations: Annotated[int, Field("power steps per measurement and per extra round (`power`)", ge=2)] = 2,
        block_size: Annotated[
            int, Field("vectors in the power iteration's basis; more converge faster on flat spectra", ge=1)
        ] = 8,
        tolerance: Annotated[
            float, Field("relative change of the last step under which an estimate counts as converged", ge=0)
        ] = 1e-4,
        max_iterations: Annotated[int, Field("most power steps per matrix and measurement", ge="iterations")] = 100,
        split: Annotated[
            Mapping[str, Sequence[str]] | None,
            Field(
                "fused weights cut into equal parts along their output dimension (null: GPT-2's `c_attn` into q, k, v)",
                valid="null or a mapping `regex → [part names]`; `{}` for none",
                check=compile_split,
            ),
        ] = None,
        strip_prefix: Annotated[str, STRIP_PREFIX] = GPT2_STRIP_PREFIX,
        spectrum_every_n_steps: Annotated[
            int, Field("every m steps also the exact top singular values / histogram (0 = never)", ge=0)
        ] = 0,
        top_k: Annotated[int, Field("how many of the largest exact singular values to log at those steps", ge=0)] = 0,
        histogram: Annotated[
            bool, Field("also log each matrix's whole spectrum as a W&B histogram at those steps")
        ] = False,
    ) -> None:
        fields = check_fields(SpectralMonitor, locals())
        super().__init__(every_n_steps)
        self.targets = targets
        self.method = method
        self.iterations = iterations
        self.block_size = block_size
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.strip_prefix = fields["strip_prefix"]
        self.spectrum_every_n_steps = spectrum_every_n_steps
        self.top_k = top_k
        self.histogram = histogram
        if (top_k or histogram) and not spectrum_every_n_steps:
            raise ConfigError(
                "SpectralMonitor.spectrum_every_n_steps", spectrum_every_n_steps, "must be >= 1 with top_k or histogram"
            )
        self.split = compile_split("SpectralMonitor.split", GPT2_FUSED_QKV) if split is None else fields["split"]
        self.matrices: list[WeightMatrix] = []
        self._bases: dict[str, torch.Tensor] = {}
        self._spectra: dict[str, torch.Tensor] = {}

    @property
    def state_key(self) -> str:
        return self._generate_state_key(targets=self.targets)

    def select(self, pl_module: L.LightningModule) -> None:
        self.matrices = select_matrices(pl_module, self.targets, self.split, self.strip_prefix)

    def measure(self, step: int) -> dict[tuple[str, str], torch.Tensor]:
        spectrum_due = self.spectrum_every_n_steps and step % self.spectrum_every_n_steps == 0
        tensors: dict[tuple[str, str], torch.Tensor] = {}
        self._spectra = {}
        with torch.no_grad():
            weights = {matrix.name: matrix.value() for matrix in self.matrices}
            finite = _finite(weights)
            for name, weight in weights.items():
                if name not in finite:  # NaN, never decomposed; a later finite measurement starts afresh
                    tensors[(name, "sigma_max")] = tensors[(name, "previous")] = weight.new_full((), math.nan)
                    tensors[(name, "fro2")] = squared_frobenius(weight)
                    self._bases.pop(name, None)
                    continue
                tensors[(name, "sigma_max")], tensors[(name, "previous")] = self.estimate(name, weight)
                tensors[(name, "fro2")] = squared_frobenius(weight)
                if spectrum_due:
                    self._spectra[name] = singular_values(weight)
                    for i in range(min(self.top_k, len(self._spectra[name]))):
                        tensors[(name, f"sigma_{i + 1}")] = self._spectra[name][i]
            values = dict(zip(tensors, _to_host(tensors.values()), strict=True))
            self._converge(finite, values)
        return {key: torch.tensor(value) for key, value in values.items() if key[1] != "previous"}

    def estimate(self, name: str, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(σ_max, the estimate one step earlier)`` of ``weight``; updates the warm start of ``name``."""
        if self.method == "exact":
            sigma = singular_values(weight)[0]
            return sigma, sigma
        basis = self._bases.get(name)
        if basis is None or basis.shape[0] != weight.shape[1]:
            sigma, self._bases[name] = exact_basis(weight, self.block_size)
            return sigma, sigma
        sigma, previous, self._bases[name] = power_iteration(weight, basis.to(weight.device), self.iterations)
        return sigma, previous

    def _converge(self, weights: dict[str, torch.Tensor], values: dict[tuple[str, str], float]) -> None:
        """More power steps for the estimates whose last step moved them by more than ``tolerance``."""
        steps = self.iterations
        pending = [name for name in weights if not self._converged(values, name)]
        while pending and steps < self.max_iterations:
            estimates = [tensor for name in pending for tensor in self.estimate(name, weights[name])]
            host = _to_host(estimates)
            for i, name in enumerate(pending):
                values[(name, "sigma_max")], values[(name, "previous")] = host[2 * i], host[2 * i + 1]
            steps += self.iterations
            pending = [name for name in pending if not self._converged(values, name)]
        if pending:
            rank_zero_warn(
                f"SpectralMonitor: sigma_max of {pending} still changing after {steps} power steps; "
                "raise block_size or max_iterations, or use method: exact"
            )

    def _converged(self, values: dict[tuple[str, str], float], name: str) -> bool:
        sigma, previous = values[(name, "sigma_max")], values[(name, "previous")]
        return abs(sigma - previous) <= self.tolerance * abs(sigma)

    def media(self, step: int) -> dict[str, Any]:
        if not (self.histogram and self._spectra):
            return {}
        import wandb

        return {
            f"spectral/{name}/spectrum": wandb.Histogram(spectrum.detach().cpu().double().numpy())
            for name, spectrum in self._spectra.items()
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "bases": {name: b.detach().cpu() for name, b in self._bases.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._bases = dict(state_dict.get("bases", {}))


def _finite(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights without NaN or inf (one device-to-host transfer for all of them)."""
    flags = torch.stack([torch.isfinite(weight).all() for weight in weights.values()])
    return {name: weight for (name, weight), ok in zip(weights.items(), flags.tolist(), strict=True) if ok}


def _to_host(tensors: Iterable[torch.Tensor]) -> list[float]:
    """Many 0-d tensors as Python floats, in one device-to-host transfer."""
    return torch.stack([t.detach().double() for t in tensors]).tolist()


def select_matrices(
    module: torch.nn.Module,
    targets: str | list[str],
    split: Mapping[re.Pattern[str], Sequence[str]],
    strip_prefix: re.Pattern[str],
) -> list[WeightMatrix]:
    """The monitored matrices of ``module``: 2-D targeted parameters, fused ones cut into parts."""
    try:
        selected = select_targets(module, targets)
    except ConfigError as err:
        raise ConfigError("SpectralMonitor.targets", err.value, err.reason) from None
    matrices = []
    for full_name, param in selected.items():
        if param.ndim != 2:
            continue
        name = strip_prefix.sub("", full_name, count=1).removesuffix(".weight")
        parts = next((names for pattern, names in split.items() if pattern.search(full_name)), None)
        if not parts:
            matrices.append(WeightMatrix(name, param))
            continue
        dim = output_dim(module, full_name)
        if param.shape[dim] % len(parts):
            raise ConfigError(
                "SpectralMonitor.split",
                {full_name: list(parts)},
                f"output dimension {param.shape[dim]} does not split into {len(parts)} equal parts",
            )
        matrices += [WeightMatrix(f"{name}.{part}", param, dim, i, len(parts)) for i, part in enumerate(parts)]
    if not matrices:
        raise ConfigError("SpectralMonitor.targets", targets, "matches no 2-D weight matrix")
    return matrices
