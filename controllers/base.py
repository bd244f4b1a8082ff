"""The controller interface: propose architectures by ask/tell over a categorical space.

Controllers see only the space's ``sizes`` (a list with the number of choices of each decision) and the
rewards they are told. They know nothing about torch models, training or Ray.
"""
from __future__ import annotations

import abc
from typing import Any, Callable, Protocol, Sequence


class HasSizes(Protocol):
    sizes: list[int]


class Controller(abc.ABC):
    """Base class: ``ask()`` -> choices; ``tell(choices, reward)``; ``state_dict()`` / ``load_state_dict()``.

    Several ``ask()`` calls may be outstanding before their ``tell()``; failed trials are told with reward 0.
    """

    name = "controller"
    # Optional, set by whoever drives the controller: whether choices could be trained at all (a search's FLOPs
    # window). A controller may use it to propose only such choices (the predictor does); it is not state.
    feasible: Callable[[Sequence[int]], bool] | None = None

    def __init__(self, space: HasSizes | Sequence[int], seed: int = 0) -> None:
        sizes = list(space) if isinstance(space, (list, tuple)) else list(space.sizes)
        if not sizes or any(int(n) < 1 for n in sizes):
            raise ValueError(f"sizes: {sizes!r} must be a non-empty list of positive integers")
        self.sizes = [int(n) for n in sizes]
        self.seed = seed
        self.num_asked = 0
        self.num_told = 0

    @abc.abstractmethod
    def ask(self) -> list[int]:
        """Propose the next architecture as a list of choice indices."""

    @abc.abstractmethod
    def tell(self, choices: Sequence[int], reward: float) -> None:
        """Report the reward (higher is better) of choices returned by an earlier ``ask()``."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this controller is."""
        return {"name": self.name, "sizes": list(self.sizes), "seed": self.seed,
                "num_asked": self.num_asked, "num_told": self.num_told}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name or list(state.get("sizes", [])) != self.sizes:
            raise ValueError(f"state of controller {state.get('name')!r} over sizes {state.get('sizes')} "
                             f"does not fit {self.name!r} over {self.sizes}")
        self.seed = state["seed"]
        self.num_asked = state["num_asked"]
        self.num_told = state["num_told"]

    def _check(self, choices: Sequence[int], reward: float) -> tuple[list[int], float]:
        choices = [int(c) for c in choices]
        if len(choices) != len(self.sizes) or any(not 0 <= c < n for c, n in zip(choices, self.sizes)):
            raise ValueError(f"choices {choices} do not fit sizes {self.sizes}")
        reward = float(reward)
        if reward != reward:  # NaN: a failed trial
            reward = 0.0
        return choices, reward
