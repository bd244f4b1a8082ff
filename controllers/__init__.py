"""Controllers: propose architectures by ask/tell over a categorical space (see controllers/base.py)."""
from __future__ import annotations

from typing import Any

from controllers.base import Controller
from controllers.evolution import RegularizedEvolution
from controllers.ppo import PPO
from controllers.random_search import RandomSearch
from controllers.reinforce import Reinforce

CONTROLLERS: dict[str, type[Controller]] = {
    "ppo": PPO,
    "reinforce": Reinforce,
    "evolution": RegularizedEvolution,
    "random": RandomSearch,
}


def make_controller(name: str, space: Any, seed: int = 0, **options: Any) -> Controller:
    """A controller by name (``ppo``, ``reinforce``, ``evolution``, ``random``) over ``space.sizes``."""
    if name not in CONTROLLERS:
        raise ValueError(f"controller: {name!r} is not one of {', '.join(CONTROLLERS)}")
    return CONTROLLERS[name](space, seed=seed, **options)


__all__ = ["CONTROLLERS", "Controller", "make_controller"]
