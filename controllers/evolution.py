"""Regularized (aging) evolution (Real et al., 2019) over a categorical space."""
from __future__ import annotations

import collections
import copy
from typing import Any, Sequence

import numpy as np

from controllers.base import Controller
from search_spaces.space import mutate_choices, sample_choices


class RegularizedEvolution(Controller):
    """Aging evolution.

    The first ``population_size`` asks are uniform samples. After that each ask picks ``sample_size``
    members of the population at random, takes the best of them as the parent and returns a copy with
    ``num_mutations`` decisions changed (retrying a few times to avoid an architecture already proposed).
    Each tell adds the child to the population and removes the oldest member once it is full.

    Defaults (population 12, sample 6, 1 mutation) were chosen with ``benchmarks/controller_landscapes.py`` for
    budgets of a few hundred trials; Real et al. used 100/25 for 20,000.
    """

    name = "evolution"

    def __init__(self, space: Any, seed: int = 0, population_size: int = 12, sample_size: int = 6,
                 num_mutations: int = 1, max_retries: int = 20) -> None:
        super().__init__(space, seed)
        if population_size < 1 or not 1 <= sample_size <= population_size or num_mutations < 1:
            raise ValueError("evolution: need population_size >= sample_size >= 1 and num_mutations >= 1")
        self.population_size = population_size
        self.sample_size = sample_size
        self.num_mutations = num_mutations
        self.max_retries = max_retries
        self.rng = np.random.default_rng(seed)
        self.population: collections.deque[tuple[list[int], float]] = collections.deque()
        self.seen: set[tuple[int, ...]] = set()

    def _mutate(self, parent: list[int]) -> list[int]:
        return mutate_choices(parent, self.sizes, self.rng, self.num_mutations)

    def ask(self) -> list[int]:
        self.num_asked += 1
        if self.num_asked <= self.population_size or not self.population:
            child = sample_choices(self.sizes, self.rng)
        else:
            members = list(self.population)
            picks = self.rng.choice(len(members), size=min(self.sample_size, len(members)), replace=False)
            parent = max((members[i] for i in picks), key=lambda m: m[1])[0]
            child = self._mutate(parent)
            for _ in range(self.max_retries):
                if tuple(child) not in self.seen:
                    break
                child = self._mutate(parent)
        self.seen.add(tuple(child))
        return child

    def tell(self, choices: Sequence[int], reward: float) -> None:
        choices, reward = self._check(choices, reward)
        self.num_told += 1
        self.seen.add(tuple(choices))
        self.population.append((choices, reward))
        while len(self.population) > self.population_size:
            self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rng": copy.deepcopy(self.rng.bit_generator.state),
                "population": [(list(c), r) for c, r in self.population],
                "seen": sorted(self.seen),
                "options": {"population_size": self.population_size, "sample_size": self.sample_size,
                            "num_mutations": self.num_mutations, "max_retries": self.max_retries}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for key, value in state["options"].items():
            setattr(self, key, value)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.population = collections.deque((list(c), float(r)) for c, r in state["population"])
        self.seen = {tuple(c) for c in state["seen"]}
