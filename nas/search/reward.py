"""MnasNet's multi-objective reward ``ACC(m) * [FLOPS(m) / T] ** w`` and FLOPs budget parsing."""
from __future__ import annotations

import math
import re

from search_spaces import REFERENCES

REWARD_MODES = ("soft", "hard")
_SUFFIX = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12}
REFERENCE_ALIASES = {"b0": "efficientnet_b0"}  # --target-flops b0
_FLOPS_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGbBtT]?)\s*$")


def parse_flops(text: str | int | float) -> int:
    """Parse a FLOPs budget: ``400M``, ``0.4G``, ``4e8``, ``400000000`` (K, M, G/B and T suffixes).

    Raises ValueError with a one-line message for anything else, and for zero or negative budgets.
    """
    if isinstance(text, bool):
        raise ValueError(f"FLOPs {text!r}: expected a number such as 400M, 0.4G or 4e8")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _FLOPS_RE.match(str(text))
        if not match:
            raise ValueError(f"FLOPs {text!r}: expected a number such as 400M, 0.4G or 4e8")
        value = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"FLOPs {text!r}: must be a positive number")
    if value < 1:
        raise ValueError(f"FLOPs {text!r}: less than one FLOP")
    return int(round(value))


def parse_flops_target(text: str | int | float) -> int | str:
    """What ``--target-flops`` takes: a FLOPs budget (:func:`parse_flops`) or a shipped reference network's name
    (``b0`` for ``efficientnet_b0``, ``mnasnet_a1``, ``mobilenet_v2``), returned as its file name: that network's
    FLOPs at the search's resolution, counted once the data's class count is known."""
    if isinstance(text, str) and not _FLOPS_RE.match(text):
        name = REFERENCE_ALIASES.get(text.strip().lower(), text.strip().lower())
        names = sorted(path.stem for path in REFERENCES.glob("*.json"))
        if name in names:
            return name
        raise ValueError(f"FLOPs {text!r}: expected a number such as 400M, 0.4G or 4e8, or a reference network "
                         f"(b0, {', '.join(names)}) for its FLOPs at --resolution")
    return parse_flops(text)


def mnas_reward(accuracy: float, flops: float, target: float, w: float = -0.07, mode: str = "soft") -> float:
    """MnasNet reward: ``accuracy * (flops / target) ** exponent``.

    ``soft``: exponent ``w`` everywhere (MnasNet's default, w = -0.07). ``hard``: exponent 0 at or under the
    target and -1 over it, so any model over budget is penalised in proportion.
    """
    if mode not in REWARD_MODES:
        raise ValueError(f"reward mode {mode!r} is not one of {', '.join(REWARD_MODES)}")
    if target <= 0 or flops <= 0:
        raise ValueError("flops and target must be positive")
    if not math.isfinite(accuracy):
        return 0.0
    ratio = flops / target
    exponent = w if mode == "soft" else (0.0 if ratio <= 1 else -1.0)
    return float(accuracy) * ratio ** exponent
