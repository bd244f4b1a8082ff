"""An LSTM policy that emits one categorical decision per step (as in NAS and MnasNet), and the shared
machinery of the policy-gradient controllers (sampling, seeding, state save/restore)."""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from controllers.base import Controller


class LSTMPolicy(nn.Module):
    """Autoregressive policy: step t reads the embedding of decision t-1's choice and outputs decision t's
    logits. Output layers start at zero, so the untrained policy is uniform."""

    def __init__(self, sizes: Sequence[int], hidden: int = 64) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.hidden = hidden
        self.start = nn.Parameter(torch.zeros(hidden))
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in self.sizes[:-1])
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.sizes)
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def _steps(self, batch: int, choose) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.start.expand(batch, -1)
        state = None
        chosen, log_probs, entropies = [], [], []
        for t, head in enumerate(self.heads):
            h, c = self.cell(x, state)
            state = (h, c)
            dist = torch.distributions.Categorical(logits=head(h))
            choice = choose(t, dist)
            chosen.append(choice)
            log_probs.append(dist.log_prob(choice))
            entropies.append(dist.entropy())
            if t < len(self.embeddings):
                x = self.embeddings[t](choice)
        return torch.stack(chosen, 1), torch.stack(log_probs, 1).sum(1), torch.stack(entropies, 1).sum(1)

    def sample(self, generator: torch.Generator) -> tuple[list[int], float]:
        """One architecture and its log-probability under the current policy."""
        with torch.no_grad():
            choices, log_prob, _ = self._steps(
                1, lambda t, d: torch.multinomial(d.probs, 1, generator=generator).squeeze(1))
        return [int(c) for c in choices[0]], float(log_prob[0])

    def log_probs_of(self, choices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities and entropies of a (batch, decisions) tensor of choices (teacher forcing)."""
        _, log_probs, entropies = self._steps(choices.shape[0], lambda t, d: choices[:, t])
        return log_probs, entropies


class PolicyController(Controller):
    """Base of the RL controllers: an LSTM policy, Adam, a seeded generator, and the advantages: rank-based
    (``rank_window``) or against a moving-average baseline."""

    def __init__(self, space: Any, seed: int = 0, hidden: int = 64, lr: float = 0.01,
                 entropy_weight: float = 0.01, baseline_decay: float = 0.9, warmup: int = 0,
                 rank_window: int = 0) -> None:
        super().__init__(space, seed)
        if warmup < 0 or rank_window < 0:
            raise ValueError(f"{self.name}: warmup and rank_window must be >= 0")
        self.options = {"hidden": hidden, "lr": lr, "entropy_weight": entropy_weight,
                        "baseline_decay": baseline_decay, "warmup": warmup, "rank_window": rank_window}
        self.recent: list[float] = []  # the last ``rank_window`` rewards told, for rank-based advantages
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = LSTMPolicy(self.sizes, hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.baseline: float | None = None
        self.pending: dict[tuple[int, ...], list[float]] = {}  # log-probs of outstanding asks

    def ask(self) -> list[int]:
        """A sample of the policy; the first ``warmup`` asks are uniform (the policy learns from them too)."""
        self.num_asked += 1
        if self.num_asked <= self.options.get("warmup", 0):
            choices = [int(torch.randint(n, (1,), generator=self.generator)) for n in self.sizes]
            with torch.no_grad():
                log_prob = float(self.policy.log_probs_of(torch.tensor([choices]))[0][0])
        else:
            choices, log_prob = self.policy.sample(self.generator)
        self.pending.setdefault(tuple(choices), []).append(log_prob)
        return choices

    def rank_advantages(self, rewards: Sequence[float]) -> list[float] | None:
        """With ``rank_window``: each reward's rank among the recent ones (these included), centred to
        [-1, 1]; insensitive to the rewards' scale and to outliers. None without a window."""
        window = self.options.get("rank_window", 0)
        if not window:
            return None
        self.recent = (self.recent + [float(r) for r in rewards])[-window:]
        n = len(self.recent)
        if n < 2:
            return [0.0 for _ in rewards]
        out = []
        for r in rewards:
            below = sum(1 for v in self.recent if v < r) + 0.5 * (sum(1 for v in self.recent if v == r) - 1)
            out.append(2.0 * below / (n - 1) - 1.0)
        return out

    def _old_log_prob(self, choices: list[int]) -> float:
        """The log-probability recorded when these choices were asked (recomputed if unknown)."""
        stack = self.pending.get(tuple(choices))
        if stack:
            value = stack.pop(0)
            if not stack:
                del self.pending[tuple(choices)]
            return value
        with torch.no_grad():
            return float(self.policy.log_probs_of(torch.tensor([choices]))[0][0])

    def _update_baseline(self, reward: float) -> None:
        decay = self.options["baseline_decay"]
        self.baseline = reward if self.baseline is None else decay * self.baseline + (1 - decay) * reward

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "options": dict(self.options),
                "policy": copy.deepcopy(self.policy.state_dict()),
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "generator": self.generator.get_state().clone(), "baseline": self.baseline,
                "pending": {k: list(v) for k, v in self.pending.items()}, "recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state["options"]["hidden"] != self.options["hidden"]:
            raise ValueError("state has a policy of another hidden size")
        self.options = dict(state["options"])
        self.policy.load_state_dict(copy.deepcopy(state["policy"]))
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        for group in self.optimizer.param_groups:
            group["lr"] = self.options["lr"]
        self.generator.set_state(state["generator"].clone())
        self.baseline = state["baseline"]
        self.pending = {tuple(k): list(v) for k, v in state["pending"].items()}
        self.recent = list(state.get("recent", []))
