"""Controllers: propose architectures by ask/tell over a categorical space (see controllers/base.py)."""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from controllers.base import Controller

# name -> "module:class"; imported on first use, so that listing the names (a command line's --help) does not
# import torch for the LSTM controllers
CONTROLLERS: dict[str, str] = {
    "ppo": "controllers.ppo:PPO",
    "reinforce": "controllers.reinforce:Reinforce",
    "evolution": "controllers.evolution:RegularizedEvolution",
    "random": "controllers.random_search:RandomSearch",
    "predictor": "controllers.predictor:PredictorSearch",
    "optuna": "controllers.optuna_tpe:OptunaTPE",  # an optional extra: pip install -e ".[optuna]"
}


# controllers that need an optional package: name -> (the package, how to install it)
OPTIONAL: dict[str, tuple[str, str]] = {"optuna": ("optuna", 'pip install -e ".[optuna]", or: pip install optuna')}


def unavailable(name: str) -> str | None:
    """Why the controller ``name`` cannot be made here (an optional package not installed), or None."""
    if name in OPTIONAL and importlib.util.find_spec(OPTIONAL[name][0]) is None:
        package, how = OPTIONAL[name]
        return f"{package} is not installed ({how})"
    return None


def controller_class(name: str) -> type[Controller]:
    """The controller class registered under ``name``."""
    if name not in CONTROLLERS:
        raise ValueError(f"controller: {name!r} is not one of {', '.join(CONTROLLERS)}")
    module, _, cls = CONTROLLERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_controller(name: str, space: Any, seed: int = 0, **options: Any) -> Controller:
    """A controller by name (``ppo``, ``reinforce``, ``evolution``, ``random``, ``predictor``, ``optuna``) over
    ``space.sizes``."""
    return controller_class(name)(space, seed=seed, **options)


__all__ = ["CONTROLLERS", "Controller", "controller_class", "make_controller", "unavailable"]
