"""Reading a checkpoint file the user names (``--ckpt_path``, every ``init_from``): one loader, one-line refusals.

``load_checkpoint`` loads with ``torch.load(weights_only=True)``, so a pickle that would build arbitrary Python
objects is refused, never executed. Everything else that is not a checkpoint — an empty file, a text file renamed
``.ckpt``, a truncated archive — is refused as ``not a checkpoint (…)`` with what the file is instead, not with
the unpickler's own exception. ``nonfinite_tensors`` names the weights of a diverged run (NaN/inf).
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cognitive_reserve.errors import ConfigError, first_line

#: The first byte of every pickle ``torch.save`` writes outside a zip archive (the PROTO opcode).
PICKLE_PROTO = b"\x80"
#: The first bytes of a zip archive (``torch.save``'s format since torch 1.6).
ZIP_MAGIC = b"PK"
#: What the weights-only unpickler says when a pickle asks for an object it will not build.
UNSAFE_MARKER = "GLOBAL"


def load_checkpoint(path: str | Path, field: str, *, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint dict of a Lightning checkpoint file (with a ``state_dict``), on the CPU.

    Raises ``ConfigError(field, path)``: no such file; not a checkpoint (empty, text, damaged); refused (a
    pickle that could run code); not a Lightning checkpoint (no ``state_dict``). ``mmap`` maps a zip
    archive's tensors instead of reading them (optimizer states then cost nothing).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(field, str(path), "no such checkpoint file")
    with path.open("rb") as file:
        head = file.read(64)
    is_zip = zipfile.is_zipfile(path)
    not_one = _not_a_checkpoint(head, is_zip)
    if not_one:
        raise ConfigError(field, str(path), f"not a checkpoint ({not_one})")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as err:
        unsafe = next((line.strip() for line in str(err).splitlines() if UNSAFE_MARKER in line), None)
        if unsafe is None:
            raise ConfigError(field, str(path), f"not a checkpoint ({_weights_only_reason(err)})") from None
        raise ConfigError(
            field, str(path), f"refused: not a plain-weights checkpoint, loading it could run code ({unsafe})"
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError, IndexError, TypeError, AttributeError, OSError) as err:
        raise ConfigError(field, str(path), f"not a checkpoint ({type(err).__name__}: {first_line(err)})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(field, str(path), "not a Lightning checkpoint (no state_dict)")
    return checkpoint


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold a NaN or an infinity, in order."""
    return [
        name
        for name, tensor in state.items()
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def check_finite_weights(checkpoint: Mapping[str, Any], field: str, path: str | Path) -> None:
    """Refuse a checkpoint whose weights hold NaN or inf (a run that diverged) in one line."""
    bad = nonfinite_tensors(checkpoint["state_dict"])
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise ConfigError(
            field,
            str(path),
            f"holds non-finite weights (NaN/inf in {shown}): the checkpoint of a run that diverged; "
            "use an earlier checkpoint of that run, or retrain it with a lower learning rate",
        )


def _not_a_checkpoint(head: bytes, is_zip: bool) -> str | None:
    """Why a file that starts with ``head`` cannot be a checkpoint ``torch.save`` wrote (None: it may be one)."""
    if not head:
        return "empty file"
    if is_zip or head.startswith(PICKLE_PROTO):
        return None
    if head.startswith(ZIP_MAGIC):
        return "a damaged or truncated zip archive"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"neither a zip archive nor a pickle: starts with {head[:16]!r}"
    return f"a text file: starts with {text.splitlines()[0][:40]!r}" if text.strip() else "a text file of blanks"


def _weights_only_reason(err: pickle.UnpicklingError) -> str:
    """The line of a weights-only unpickling error that says what went wrong (not its boilerplate)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = [line for line in lines if not line.startswith(("Weights only load failed", "Please file", "Check the"))]
    return detail[0] if detail else first_line(err)
