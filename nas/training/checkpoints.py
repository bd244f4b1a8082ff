"""nas-train's checkpoints: ``last.pt`` (and the one before it, ``previous.pt``) and ``best.pt``.

A checkpoint is a dict of tensors, numbers and strings (``nas-train-checkpoint/1``), so it loads with
``torch.load(path, weights_only=True)``: a crafted file runs no code. It holds the spec (JSON), the model's
and the EMA's weights, the optimizer's and the schedule's state, the epoch it completed, the best held-out
accuracy so far, the normalisation and the recipe. Each is written atomically; before a new ``last.pt`` the
old one becomes ``previous.pt``, so a corrupt ``last.pt`` costs one more epoch, never the run.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from nas.errors import UserInputError
from nas.files import atomic_write

FORMAT = "nas-train-checkpoint/1"
LAST, PREVIOUS, BEST = "last.pt", "previous.pt", "best.pt"


class CheckpointError(UserInputError):
    """A checkpoint that cannot be used (unreadable, another format, another architecture)."""


def _to_bytes(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_checkpoint(out_dir: Path, state: dict[str, Any], best: bool) -> None:
    """Write ``state`` as ``last.pt`` (the old one kept as ``previous.pt``) and, when ``best``, as ``best.pt``."""
    out_dir = Path(out_dir)
    data = _to_bytes({"format": FORMAT, **state})
    last = out_dir / LAST
    if last.exists():
        os.replace(last, out_dir / PREVIOUS)
    atomic_write(last, data)
    if best:
        atomic_write(out_dir / BEST, data)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's state (weights only: nothing in the file runs); CheckpointError when it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated, corrupt or crafted file is the same to the user
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160] if str(exc) else 'no details'})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a nas-train checkpoint (format {FORMAT})")
    return state


def latest_checkpoint(out_dir: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The newest usable checkpoint in a run directory (``last.pt``, else ``previous.pt``) and warnings; None
    when there is neither. A corrupt ``last.pt`` is set aside as ``last.pt.corrupt``."""
    out_dir = Path(out_dir)
    notes: list[str] = []
    for name in (LAST, PREVIOUS):
        path = out_dir / name
        if not path.exists():
            continue
        try:
            return load_checkpoint(path), notes
        except CheckpointError as exc:
            notes.append(f"warning: {exc}; it is set aside as {_set_aside(path).name}")
    return None, notes


def _set_aside(path: Path) -> Path:
    """Move an unreadable checkpoint to ``<name>.corrupt`` (kept for a look, never loaded); its new path."""
    corrupt = path.with_name(f"{path.name}.corrupt")
    os.replace(path, corrupt)
    return corrupt


def restore_best(out_dir: Path, state: dict[str, Any]) -> str | None:
    """When ``best.pt`` is missing or unreadable but ``state`` (the checkpoint a resume continues from) is
    there: write ``state`` as ``best.pt``, recorded as the best of its own epoch (the best epoch's weights are
    lost), and return the warning to print; None when ``best.pt`` is usable."""
    out_dir = Path(out_dir)
    path = out_dir / BEST
    try:
        load_checkpoint(path)
        return None
    except CheckpointError as exc:
        problem = str(exc)
        if path.exists():  # unreadable, not missing
            problem += f" (set aside as {_set_aside(path).name})"
    stand_in = {**state, "best": {**state.get("best", {}), "epoch": int(state["epoch"]),
                                  "weights": state.get("selected", "raw")}}
    atomic_write(path, _to_bytes({"format": FORMAT, **stand_in}))
    lost = state.get("best", {}).get("epoch")
    return (f"warning: {problem}: the weights of the best epoch ({lost}) are lost; epoch {state['epoch']}'s "
            f"weights stand in as {BEST} and are what the test split judges")


def check_architecture(state: dict[str, Any], spec_hash: str, spec_name: str, where: str) -> None:
    """Refuse a checkpoint of another architecture, naming both."""
    if state.get("spec_hash") != spec_hash:
        raise CheckpointError(f"{where} holds {state.get('spec_name', '?')} ({str(state.get('spec_hash'))[:12]}), "
                              f"not {spec_name} ({spec_hash[:12]}): another architecture")
