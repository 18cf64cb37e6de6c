"""Which weights ``validate``, ``test`` and ``predict`` measure: a checkpoint, the model's own trained weights, or
the untrained model on request — never an untrained model by accident.

``test`` without ``--ckpt_path`` used to score the model as constructed: the linear ``svd`` solver's zeros (every
sweep row 0.0, "perfectly robust"), a random GPT-2, a GLUE classifier with an untrained head. Now a measuring
stage takes, in this order:

1. ``--ckpt_path PATH``, or ``--ckpt_path last``: the run's ``checkpoints/last.ckpt``, refused when it does not
   exist (Lightning would warn and go on with the untrained model);
2. no ``--ckpt_path``: the run's ``checkpoints/last.ckpt`` when it exists (said in the weights line);
3. else the model's own weights when all of them are trained (a ``GPT2LanguageModel`` with ``init_from`` or
   ``pretrained``);
4. ``--ckpt_path initial``: the model as constructed, on purpose (refused where that is no model at all);
5. otherwise a one-line refusal naming these ways on, before anything is created.
"""

from __future__ import annotations

from pathlib import Path

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.provenance import WeightsProvenance

#: The stages that measure a model instead of training it.
MEASURING = ("validate", "test", "predict")
#: ``--ckpt_path initial``: measure the model as constructed (its initial weights), on purpose.
INITIAL = "initial"
LAST = "last"


def measured_checkpoint(subcommand: str, ckpt_path: str | None, checkpoints: Path) -> tuple[str | None, bool]:
    """``(the checkpoint file a stage loads or None, whether it was picked up without --ckpt_path)``.

    ``checkpoints`` is the run's checkpoint directory. ``fit`` keeps its ``ckpt_path`` as given (``last``
    resumes, when there is one); a measuring stage gets ``last`` resolved to a file, ``initial`` turned into
    None, and ``checkpoints/last.ckpt`` when nothing was given and it exists.
    """
    if subcommand not in MEASURING:
        if ckpt_path == INITIAL:
            raise ConfigError(
                "ckpt_path",
                INITIAL,
                f"only {', '.join(MEASURING)} take it ({subcommand} starts from the model's initial weights anyway)",
            )
        return ckpt_path, False
    last = checkpoints / "last.ckpt"
    if ckpt_path == INITIAL:
        return None, False
    if ckpt_path == LAST:
        if not last.is_file():
            raise ConfigError("ckpt_path", LAST, f"no checkpoint to {subcommand}: {last} does not exist")
        return str(last), False
    if ckpt_path == "best":
        raise ConfigError(
            "ckpt_path", "best", f"a new {subcommand} process knows no best checkpoint: give its file ({checkpoints}/…)"
        )
    if ckpt_path is None and last.is_file():
        return str(last), True
    return ckpt_path, False


def check_measured_weights(subcommand: str, weights: WeightsProvenance, initial: bool, checkpoints: Path) -> None:
    """Refuse to measure untrained weights unless asked for (``--ckpt_path initial``), and refuse that request
    where the untrained model is no model at all (the linear ``svd`` solver before ``fit``)."""
    if weights.trained:
        return
    if initial:
        if weights.unmeasurable:
            raise ConfigError("ckpt_path", INITIAL, f"{weights.unmeasurable}; fit first, or give --ckpt_path PATH")
        return
    raise ConfigError(
        "ckpt_path",
        None,
        f"{subcommand} needs trained weights, but {checkpoints / 'last.ckpt'} does not exist and the model holds "
        f"{weights.describe()}; give --ckpt_path PATH (a checkpoint of a fit), fit first into this "
        f"trainer.default_root_dir, or measure the untrained model on purpose with --ckpt_path {INITIAL}",
    )


def weights_line(weights: WeightsProvenance, picked_up: bool) -> str:
    """The one line a measuring stage prints about its weights."""
    found = " — found in the run directory (choose another with --ckpt_path)" if picked_up else ""
    return f"weights: {weights.describe()}{found}"
