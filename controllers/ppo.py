"""Proximal policy optimization of the LSTM policy, as MnasNet trained its controller."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from controllers.policy import PolicyController


class PPO(PolicyController):
    """PPO's clipped surrogate objective, updated after every ``batch_size`` tells.

    Each update runs ``epochs`` passes over the batch with
    ``loss = -min(r A, clip(r, 1 - clip, 1 + clip) A) - entropy_weight * H``, where ``r`` is the probability
    ratio against the policy that asked, and the advantage ``A`` is the reward minus a moving-average
    baseline, divided by the batch's standard deviation.
    """

    name = "ppo"

    def __init__(self, space: Any, seed: int = 0, hidden: int = 64, lr: float = 0.01,
                 entropy_weight: float = 0.005, baseline_decay: float = 0.5, batch_size: int = 4,
                 epochs: int = 2, clip: float = 0.2, warmup: int = 0, rank_window: int = 0) -> None:
        super().__init__(space, seed, hidden, lr, entropy_weight, baseline_decay, warmup, rank_window)
        if batch_size < 1 or epochs < 1 or clip <= 0:
            raise ValueError("ppo: batch_size and epochs must be >= 1 and clip > 0")
        self.options.update(batch_size=batch_size, epochs=epochs, clip=clip)
        self.batch: list[tuple[list[int], float, float]] = []

    def tell(self, choices: Sequence[int], reward: float) -> None:
        choices, reward = self._check(choices, reward)
        self.num_told += 1
        self.batch.append((choices, reward, self._old_log_prob(choices)))
        if len(self.batch) >= self.options["batch_size"]:
            self._update()

    def _update(self) -> None:
        choices = torch.tensor([c for c, _, _ in self.batch])
        rewards = torch.tensor([r for _, r, _ in self.batch])
        old_log_probs = torch.tensor([lp for _, _, lp in self.batch])
        ranked = self.rank_advantages([r for _, r, _ in self.batch])
        if ranked is not None:
            advantages = torch.tensor(ranked)
        else:
            baseline = float(rewards.mean()) if self.baseline is None else self.baseline
            advantages = rewards - baseline
            if len(self.batch) > 1:
                advantages = advantages / (rewards.std() + 1e-8)
        clip = self.options["clip"]
        for _ in range(self.options["epochs"]):
            log_probs, entropy = self.policy.log_probs_of(choices)
            ratio = torch.exp(log_probs - old_log_probs)
            surrogate = torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
            loss = -surrogate.mean() - self.options["entropy_weight"] * entropy.mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self._update_baseline(float(rewards.mean()))
        self.batch = []

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "batch": [(list(c), r, lp) for c, r, lp in self.batch]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.batch = [(list(c), float(r), float(lp)) for c, r, lp in state["batch"]]
