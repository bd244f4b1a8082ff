"""Specs for checks and measurements: the shipped reference networks by name, and random valid specs wider
than the MnasNet space (any op, kernel, expansion and SE, 1-7 blocks) for property tests and FLOP benchmarks."""
from __future__ import annotations

import random

from search_spaces import REFERENCES
from search_spaces.ops import LAYER_KINDS
from search_spaces.spec import ArchSpec, BlockSpec, load_spec


def reference(name: str) -> ArchSpec:
    return load_spec(REFERENCES / f"{name}.json")


def random_spec(rng: random.Random, resolution: int | None = None) -> ArchSpec:
    """A random valid spec, wider than the MnasNet space: any op/kernel/expand/SE, 1-7 blocks."""
    stem = rng.choice([8, 16, 24, 32, 40])
    blocks, cin = [], stem
    for _ in range(rng.randint(1, 7)):
        op = rng.choice(["mbconv", *LAYER_KINDS])  # every kind, MBConv twice as often
        cout = rng.choice([8, 12, 16, 24, 32, 48, 64, cin])
        blocks.append(BlockSpec(op=op, repeats=rng.randint(1, 3), kernel=rng.choice([1, 3, 5, 7]),
                                stride=rng.choice([1, 2]), expand=rng.choice([1, 2, 3, 4, 6]) if LAYER_KINDS[op].expands else 1,
                                in_channels=cin, out_channels=cout, se=rng.choice([0.0, 0.0, 0.25, 0.5, 0.1]),
                                skip=rng.random() < 0.7))
        cin = cout
    return ArchSpec(name="random", resolution=resolution or rng.choice([32, 33, 64, 97, 128, 224]),
                    num_classes=rng.choice([10, 100, 1000]), stem_channels=stem,
                    head_channels=rng.choice([64, 128, 1280]), activation=rng.choice(["swish", "relu", "relu6"]),
                    dropout=0.2, drop_connect=rng.choice([0.0, 0.2]), blocks=tuple(blocks),
                    stem_stride=rng.choice([2, 2, 1]))
