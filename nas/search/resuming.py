"""What a resumed search may change: the trial budget, the resources, the cache and the output, and the reward
(the recorded trials are rescored with it, and the controller is told the rescored history); anything else
that differs from the run's settings is a user error."""
from __future__ import annotations

from typing import Any

from nas.errors import UserInputError, shown
from nas.search.config import SearchConfig
from nas.search.start_points import expand_start_from
from nas.training.recipe import PROXY_LR
from search_spaces.mnasnet import MnasNetConfig

RESUMABLE = ("out", "trials", "address", "gpus_per_trial", "cpus_per_trial", "concurrency", "cache", "no_cache",
             "debug", "window", "scheduler", "finalists", "finalist_epochs")
RESCORING = ("target_flops", "target_latency_ms", "w", "reward")  # flat settings that score the trials


def resumed(saved: SearchConfig, given: dict[str, Any], num_classes: int | None = None) -> SearchConfig:
    """The ``saved`` configuration continued with the flat settings a user gave on ``--resume``
    (``num_classes``: the class count of the run's networks, when known).

    The trial budget, resources, cache and debug output may change; a new target, ``w`` or reward form
    rescores the recorded trials. Anything else that differs from the run's definition is a user error; a
    setting given at the value the run already takes effect with is not a change.
    """
    mine = saved.to_dict()
    changes = {}
    for key, value in given.items():
        if key in RESUMABLE or key in RESCORING:
            changes[key] = value
        elif key == "space":
            ours, theirs = saved.space, MnasNetConfig.from_dict(value)
            if ours != theirs:
                raise UserInputError(f"--resume: --space describes another space ({theirs.fingerprint()}) than "
                                     f"the run's ({ours.fingerprint()}, kept as space.json in the run); start a "
                                     f"new run with another --out instead")
        elif effective(saved, key, mine.get(key), num_classes) != effective(saved, key, value, num_classes):
            flag = "--" + key.replace("_", "-")
            raise UserInputError(f"--resume: {flag} {shown(value)} differs from the run's "
                                 f"({shown(effective(saved, key, mine.get(key), num_classes))}); start a new run "
                                 f"with another --out instead")
    continued = SearchConfig.of(**{**mine, **changes})
    counted = continued.with_counted_target(num_classes or 1000)
    if saved.space.fit_width and counted.fit_flops != saved.with_counted_target(num_classes or 1000).fit_flops:
        raise UserInputError("--resume: the run fits every network's widths to its FLOPs target, so another "
                             "target (or window) would change the networks its trials decode to; start a new "
                             "run with another --out instead (the result cache serves what it can)")
    return continued


def effective(saved: SearchConfig, key: str, value: Any, num_classes: int | None = None) -> Any:
    """The value a flat setting takes effect with, so that a flag given at it on ``--resume`` is not taken for a
    change: None (the default) as what it stands for (the optimizer's learning rate; the data's class count,
    ``num_classes``, when known), start points as the names they expand to (``none``: no start points)."""
    if key == "lr" and value is None:
        return PROXY_LR[saved.proxy.optimizer]
    if key == "num_classes" and value is None:
        return num_classes
    if key == "start_from":
        return expand_start_from([value] if isinstance(value, str) else list(value))
    return value


def rescores(saved: SearchConfig, other: SearchConfig) -> bool:
    """Whether ``other`` scores trials differently from ``saved``."""
    mine, theirs = saved.to_dict(), other.to_dict()
    return any(mine[key] != theirs[key] for key in RESCORING)
