"""The network nas-export writes: the spec's model with a checkpoint's weights and its input normalisation.

The exported graph takes float32 NCHW RGB images scaled to [0, 1] (input ``images``, any batch) and returns
the logits (``logits``); the per-channel normalisation the network was trained with is inside the graph.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nas.network.builder import build_model
from nas.training.checkpoints import check_architecture, load_checkpoint
from nas.training.full import selected_weights
from search_spaces.spec import ArchSpec, architecture_hash

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Normalized(nn.Module):
    """``(x - mean) / std`` per channel, then the network."""

    def __init__(self, network: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network((images - self.mean) / self.std)


def exportable_model(spec: ArchSpec, checkpoint: str | Path | None) -> tuple[Normalized, ArchSpec, str]:
    """The model to export (eval mode), the spec it was built from, and which weights it holds.

    With a checkpoint: its chosen weights (EMA or raw, by held-out accuracy), classifier width, resolution and
    normalisation; a checkpoint of another architecture is refused, naming both. Without: random weights and
    ImageNet's normalisation (weights ``"random"``: the caller warns).
    """
    if checkpoint is None:
        return Normalized(build_model(spec), IMAGENET_MEAN, IMAGENET_STD).eval(), spec, "random"
    state = load_checkpoint(checkpoint)
    classes = int(state["num_classes"])
    check_architecture(state, architecture_hash(spec, classes), spec.name, f"--checkpoint {checkpoint}")
    spec = spec.replace(num_classes=classes)
    network = build_model(spec)
    network.load_state_dict(selected_weights(state))
    which = f"{state['selected']} weights of epoch {state['epoch']}"
    return Normalized(network, state["mean"], state["std"]).eval(), spec, which
