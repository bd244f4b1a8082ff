"""A generic categorical search space: an ordered list of named decisions, each with a list of choices.

An architecture is a list of choice indices, one per decision. Controllers see only ``sizes`` and rewards.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def sample_choices(sizes: Sequence[int], rng: np.random.Generator) -> list[int]:
    """One uniformly random choice index per decision."""
    return [int(rng.integers(n)) for n in sizes]


def mutate_choices(choices: Sequence[int], sizes: Sequence[int], rng: np.random.Generator,
                   num_mutations: int = 1) -> list[int]:
    """A copy with ``num_mutations`` decisions (among those with 2+ choices) set to a different choice."""
    child = list(choices)
    mutable = [i for i, n in enumerate(sizes) if n > 1]
    if not mutable:
        return child
    for i in rng.choice(mutable, size=min(num_mutations, len(mutable)), replace=False):
        other = int(rng.integers(sizes[i] - 1))
        child[i] = other if other < child[i] else other + 1
    return child


class SpaceError(ValueError):
    """Choices that do not fit the space, or a spec that lies outside it."""


class CategoricalSpace:
    """Named decisions with their choices; ``sample``, ``mutate``, ``validate`` and ``describe`` choices."""

    def __init__(self, decisions: Sequence[tuple[str, Sequence[Any]]]) -> None:
        if not decisions:
            raise SpaceError("a space needs at least one decision")
        names = [name for name, _ in decisions]
        if len(set(names)) != len(names):
            raise SpaceError("decision names must be unique")
        for name, choices in decisions:
            if len(choices) < 1:
                raise SpaceError(f"decision {name!r} has no choices")
        self.decisions: list[tuple[str, list[Any]]] = [(name, list(choices)) for name, choices in decisions]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.decisions]

    @property
    def sizes(self) -> list[int]:
        return [len(choices) for _, choices in self.decisions]

    @property
    def size(self) -> int:
        """Number of distinct choice vectors."""
        return math.prod(self.sizes)

    def __len__(self) -> int:
        return len(self.decisions)

    def sample(self, rng: np.random.Generator) -> list[int]:
        """A uniformly random architecture."""
        return sample_choices(self.sizes, rng)

    def mutate(self, choices: Sequence[int], rng: np.random.Generator, num_mutations: int = 1) -> list[int]:
        """A copy with ``num_mutations`` decisions (among those with 2+ choices) set to a different choice."""
        return mutate_choices(self.validate(choices), self.sizes, rng, num_mutations)

    def validate(self, choices: Sequence[int]) -> list[int]:
        """Return the choices as a list of ints, or raise SpaceError saying what is wrong."""
        if len(choices) != len(self.decisions):
            raise SpaceError(f"expected {len(self.decisions)} choices, got {len(choices)}")
        out = []
        for (name, options), value in zip(self.decisions, choices):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise SpaceError(f"{name}: choice {value!r} is not an integer index")
            if not 0 <= value < len(options):
                raise SpaceError(f"{name}: choice {value} is out of range 0..{len(options) - 1}")
            out.append(int(value))
        return out

    def values(self, choices: Sequence[int]) -> dict[str, Any]:
        """The chosen value of each decision, by name."""
        choices = self.validate(choices)
        return {name: options[c] for (name, options), c in zip(self.decisions, choices)}

    def describe(self, choices: Sequence[int]) -> str:
        """A readable one-line summary: ``name=value`` for every decision."""
        return " ".join(f"{name}={value}" for name, value in self.values(choices).items())
