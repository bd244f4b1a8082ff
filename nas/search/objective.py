"""What a search ranks for: the targets, where the networks are counted, the reward and the window that screens."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nas.console import describe_reward
from nas.errors import SettingError
from nas.network.counting import profile
from nas.search.reward import mnas_reward, parse_flops_target
from search_spaces import REFERENCES
from search_spaces.spec import MAX_CLASSES, MAX_RESOLUTION, MIN_RESOLUTION, load_spec

DEFAULT_WINDOW = (0.5, 1.5)  # chosen on benchmarks/controller_landscapes.py; see docs/search-efficiency.md


@dataclass(frozen=True)
class Objective:
    """The targets (FLOPs at ``resolution``, predicted latency, or both), MnasNet's reward of a measured accuracy
    under them, and the window outside which a candidate is screened instead of trained."""

    # None: latency is the only objective (then target_latency_ms is set); a reference network's name (b0 ...):
    # its FLOPs at ``resolution``, counted by :meth:`counted` once the data's class count is known
    target_flops: int | str | None = None
    target_latency_ms: float | None = None
    latency_table: str | None = None  # the nas-latency-table file that predicts every candidate's latency
    resolution: int = 224  # where the networks run and their FLOPs are counted
    num_classes: int | None = None  # the networks' classes; None: the data's
    reward: str = "soft"
    w: float = -0.07
    # candidates whose FLOPs (and predicted latency) fall outside [lo, hi] x their target are not trained
    window: tuple[float, float] = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if self.target_flops is None and self.target_latency_ms is None:
            raise SettingError(("target_flops", "target_latency_ms"), "a target is required (e.g. 400M FLOPs, "
                                                                      "20 ms), or both")
        if isinstance(self.target_flops, str):
            try:
                object.__setattr__(self, "target_flops", parse_flops_target(self.target_flops))
            except ValueError as exc:
                raise SettingError("target_flops", str(exc)) from None
        if self.target_latency_ms is not None:
            if not 0 < self.target_latency_ms < float("inf"):
                raise SettingError("target_latency_ms", "must be positive", self.target_latency_ms)
            if not self.latency_table:
                raise SettingError(("target_latency_ms", "latency_table"), "a latency target needs a latency "
                                   "table: a nas-latency-table file, or this CPU's (latency device cpu)")
        if not MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION:
            raise SettingError("resolution", f"must be {MIN_RESOLUTION} to {MAX_RESOLUTION}", self.resolution)
        if self.num_classes is not None and not 1 < self.num_classes <= MAX_CLASSES:
            raise SettingError("num_classes", f"must be 2..{MAX_CLASSES:,}", self.num_classes)
        if self.reward not in ("soft", "hard"):
            raise SettingError("reward", "expected soft or hard", repr(self.reward))
        if not -10 <= self.w <= 0:  # a positive w rewards bigger networks: the opposite of a budget
            raise SettingError("w", "must be between -10 and 0 (MnasNet's is -0.07; 0 ignores the target)", self.w)
        lo, hi = (float(v) for v in self.window)
        if not 0 <= lo < hi:
            raise SettingError("window", "expected 0 <= LO < HI, e.g. 0.5,1.5 (0,inf: off)", (lo, hi))
        object.__setattr__(self, "window", (lo, hi))

    def counted(self, num_classes: int) -> "Objective":
        """This objective with a target given as a reference network's name (``b0``) made a number: that
        network's FLOPs at ``resolution`` with the networks' class count (``num_classes`` unless set)."""
        if not isinstance(self.target_flops, str):
            return self

        reference = load_spec(REFERENCES / f"{self.target_flops}.json")
        counts = profile(reference, self.resolution, method="analytic", num_classes=self.num_classes or num_classes)
        return dataclasses.replace(self, target_flops=counts["flops"])

    def score(self, accuracy: float, flops: float, latency_ms: float = 0.0) -> float:
        """MnasNet's reward of a measured accuracy: one factor ``(value / target) ** w`` per target set (FLOPs,
        predicted latency), so both multiply when both are set."""
        reward = float(accuracy)
        for value, target in ((flops, self.target_flops), (latency_ms, self.target_latency_ms)):
            if target:
                if not value or not value > 0:
                    return 0.0
                reward = mnas_reward(reward, value, target, self.w, self.reward)
        return reward

    @property
    def screening(self) -> bool:
        """Whether the window is on (anything but ``0,inf``)."""
        return self.window != (0.0, float("inf"))

    def screens(self, flops: float, latency_ms: float = 0.0) -> bool:
        """Whether a candidate (FLOPs at ``resolution``, predicted latency) is kept from training by the window:
        outside ``window`` x the target of any objective that is set."""
        lo, hi = self.window
        return any(target and not lo * target <= (value or 0) <= hi * target
                   for value, target in ((flops, self.target_flops), (latency_ms, self.target_latency_ms)))

    def describe_reward(self) -> str:
        """``soft reward (w=-0.07)`` or ``hard reward (accuracy at or under the target)``, for log lines."""
        return describe_reward(self.reward, self.w)

    def describe_target(self) -> str:
        """``400M FLOPs at 224px``, ``20 ms (predicted)`` or both, for log lines and titles."""
        parts = []
        if self.target_flops:
            parts.append(f"{self.target_flops / 1e6:g}M FLOPs at {self.resolution}px")
        if self.target_latency_ms:
            parts.append(f"{self.target_latency_ms:g} ms latency (predicted)")
        return " and ".join(parts)
