"""Random search: uniform sampling, the honest baseline."""
from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np

from controllers.base import Controller
from search_spaces.space import sample_choices


class RandomSearch(Controller):
    """Every decision drawn uniformly and independently; rewards are ignored."""

    name = "random"

    def __init__(self, space: Any, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.rng = np.random.default_rng(seed)

    def ask(self) -> list[int]:
        self.num_asked += 1
        return sample_choices(self.sizes, self.rng)

    def tell(self, choices: Sequence[int], reward: float) -> None:
        self._check(choices, reward)
        self.num_told += 1

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rng": copy.deepcopy(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
