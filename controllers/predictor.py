"""A controller that learns from few samples: an ensemble of small MLPs predicts the reward of thousands of
proposals, and only the most promising are trained (in the spirit of BANANAS, White et al. 2021).

Each ask after the warm-up:

1. (re)fits the ensemble on every (choices, reward) told so far: one-hot choices (plus the optional free
   features, standardised) in, the rewards as normal scores of their ranks out (robust to the zeros of
   failed and screened candidates);
2. builds a pool of candidates: mutations (1 or 2 decisions) of the best told so far and fresh uniform samples;
3. draws one member of the ensemble (Thompson sampling over the ensemble: members disagree where the data is
   thin, so their argmax explores) and proposes the pool's best by it that was neither told nor is pending.

When the driver sets ``feasible`` (the search's FLOPs window), the warm-up samples and the pool hold only
candidates it accepts, so no ask is spent on a network the search would not train.

Pure numpy: no torch model of a candidate, no Ray; ask/tell like the other controllers, several asks may be
outstanding, and none is proposed twice.
"""
from __future__ import annotations

import copy
import math
from statistics import NormalDist
from typing import Any, Callable, Sequence

import numpy as np

from controllers.base import Controller
from search_spaces.space import sample_choices

Features = Callable[[Sequence[int]], Sequence[float]]
FRESH_DRAWS = 500  # uniform draws for one fresh candidate within ``feasible`` (about 1 in 23 is, in a 0.5-1x window)
MISSES = 3  # asks that found nothing ``feasible`` accepts, after which it is no longer consulted


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Each value replaced by the standard normal quantile of its rank (ties share the mean rank)."""
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):  # ties: the mean of their ranks
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    quantile = NormalDist().inv_cdf
    return np.array([quantile((r + 0.5) / len(values)) for r in ranks])


class MLPEnsemble:
    """``members`` one-hidden-layer MLPs trained together (batched numpy, full-batch Adam, squared error)."""

    def __init__(self, members: int = 5, hidden: int = 32, steps: int = 200, lr: float = 0.01,
                 weight_decay: float = 1e-3) -> None:
        self.members, self.hidden, self.steps, self.lr, self.weight_decay = members, hidden, steps, lr, weight_decay
        self.params: list[np.ndarray] = []

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        """Train every member from a fresh start on a bootstrap resample of (x, y)."""
        n, d = x.shape
        e, h = self.members, self.hidden
        self.params = [rng.normal(0, 1 / math.sqrt(d), (e, d, h)).astype(np.float32),
                       np.zeros((e, 1, h), np.float32),
                       rng.normal(0, 1 / math.sqrt(h), (e, h, 1)).astype(np.float32),
                       np.zeros((e, 1, 1), np.float32)]
        picks = rng.integers(0, n, (e, n))  # bootstrap: each member sees its own resample
        xb = x[picks].astype(np.float32)  # (e, n, d); float32 halves the time of a fit
        yb = y[picks][..., None].astype(np.float32)  # (e, n, 1)
        moments = [(np.zeros_like(p), np.zeros_like(p)) for p in self.params]
        beta1, beta2 = 0.9, 0.999
        for step in range(1, self.steps + 1):
            w1, b1, w2, b2 = self.params
            hidden = np.maximum(xb @ w1 + b1, 0.0)
            error = (hidden @ w2 + b2 - yb) * (2.0 / n)
            grad_w2 = hidden.transpose(0, 2, 1) @ error
            grad_hidden = (error @ w2.transpose(0, 2, 1)) * (hidden > 0)
            grads = [xb.transpose(0, 2, 1) @ grad_hidden, grad_hidden.sum(1, keepdims=True), grad_w2,
                     error.sum(1, keepdims=True)]
            for index, (param, grad) in enumerate(zip(self.params, grads)):
                if index in (0, 2):
                    grad = grad + self.weight_decay * param
                m, v = moments[index]
                m *= beta1
                m += (1 - beta1) * grad
                v *= beta2
                v += (1 - beta2) * grad * grad
                param -= self.lr * (m / (1 - beta1 ** step)) / (np.sqrt(v / (1 - beta2 ** step)) + 1e-8)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions of every member, shape (members, len(x))."""
        w1, b1, w2, b2 = self.params
        return (np.maximum(x.astype(np.float32)[None] @ w1 + b1, 0.0) @ w2 + b2)[..., 0]


class PredictorSearch(Controller):
    """Surrogate-guided search: see the module docstring.

    ``warmup`` uniform samples first; then the ensemble is refitted every ``refit_every`` tells (2: an ask and a
    tell take 32 ms on average with 200 observations on one thread, 59 ms when refitted at every tell) and each ask
    proposes from a pool of ``pool_size`` candidates, ``mutation_fraction`` of them mutations of the
    ``parents`` best so far. ``features``: an optional function of the choices returning free numbers the
    caller knows (e.g. log FLOPs and params), appended to the one-hot input.
    """

    name = "predictor"

    def __init__(self, space: Any, seed: int = 0, warmup: int = 10, pool_size: int = 2000,
                 mutation_fraction: float = 0.5, parents: int = 5, members: int = 5, hidden: int = 32,
                 fit_steps: int = 200, refit_every: int = 2, features: Features | None = None) -> None:
        super().__init__(space, seed)
        if warmup < 2 or pool_size < 1 or not 0 <= mutation_fraction <= 1 or parents < 1 or refit_every < 1:
            raise ValueError("predictor: need warmup >= 2, pool_size >= 1, 0 <= mutation_fraction <= 1, "
                             "parents >= 1 and refit_every >= 1")
        self.warmup, self.pool_size, self.mutation_fraction = warmup, pool_size, mutation_fraction
        self.parents, self.refit_every, self.features = parents, refit_every, features
        self.ensemble = MLPEnsemble(members, hidden, fit_steps)
        self.rng = np.random.default_rng(seed)
        self.observed: list[tuple[list[int], float]] = []
        self.pending: set[tuple[int, ...]] = set()
        self.seen: set[tuple[int, ...]] = set()
        self._fitted_at = -1  # observations the ensemble was last fitted on
        self._feature_stats: tuple[np.ndarray, np.ndarray] | None = None
        self.misses = 0  # asks in which ``feasible`` accepted nothing
        self.offsets = np.cumsum([0] + self.sizes[:-1])

    def encode(self, candidates: Sequence[Sequence[int]]) -> np.ndarray:
        """One-hot rows (plus the free features, standardised as in the last fit) of ``candidates``."""
        index = np.asarray(candidates, dtype=np.int64) + self.offsets
        x = np.zeros((len(candidates), sum(self.sizes)))
        np.put_along_axis(x, index, 1.0, axis=1)
        if self.features is None:
            return x
        extra = np.asarray([list(self.features(c)) for c in candidates], dtype=float)
        if self._feature_stats is None:
            self._feature_stats = (extra.mean(0), extra.std(0) + 1e-9)
        mean, std = self._feature_stats
        return np.hstack([x, (extra - mean) / std])

    def _refit(self) -> None:
        """Fit on the first k observations, k the last multiple of ``refit_every`` past the warm-up: the same k
        whether or not the run was resumed in between, so a resumed run proposes what the uninterrupted one
        would."""
        told = len(self.observed)
        k = told - (told - self.warmup) % self.refit_every
        if k == self._fitted_at:
            return
        chosen = [c for c, _ in self.observed[:k]]
        self._feature_stats = None  # the free features standardised over the fitted observations
        x = self.encode(chosen)
        y = normal_scores(np.array([r for _, r in self.observed[:k]]))
        self.ensemble.fit(x, y, np.random.default_rng([self.seed, k]))  # a generator of its own per fit
        self._fitted_at = k

    def _pool(self) -> np.ndarray:
        """``pool_size`` candidates as rows: mutations (1 or 2 decisions) of the best so far, then fresh
        uniform samples; drawn in bulk (a Python loop per candidate cost more than the rest of an ask)."""
        sizes = np.asarray(self.sizes)
        best = sorted(self.observed, key=lambda o: o[1], reverse=True)[: self.parents]
        mutations = int(self.pool_size * self.mutation_fraction) if best else 0
        fresh = (self.rng.random((self.pool_size - mutations, len(sizes))) * sizes).astype(np.int64)
        if not mutations:
            return fresh
        rows = np.asarray([best[i % len(best)][0] for i in range(mutations)], dtype=np.int64)
        count = self.rng.integers(1, 3, mutations)  # 1 or 2 decisions changed
        for k in range(2):
            where = self.rng.integers(0, len(sizes), mutations)
            shift = 1 + (self.rng.random(mutations) * (sizes[where] - 1)).astype(np.int64)  # never the same value
            change = count > k
            index = np.nonzero(change)[0]
            rows[index, where[index]] = (rows[index, where[index]] + shift[index]) % sizes[where[index]]
        return np.vstack([rows, fresh])

    def ask(self) -> list[int]:
        self.num_asked += 1
        if len(self.observed) < self.warmup:
            child = self._fresh(sample_choices(self.sizes, self.rng))
        else:
            self._refit()
            pool = [c for c in map(tuple, self._pool().tolist()) if c not in self.seen and c not in self.pending]
            pool = self._feasible_part(pool)
            if not pool:
                child = self._fresh(sample_choices(self.sizes, self.rng))
            else:
                member = int(self.rng.integers(self.ensemble.members))
                scores = self.ensemble.predict(self.encode(pool))[member]
                child = list(pool[int(np.argmax(scores))])
        self.pending.add(tuple(child))
        return child

    def _fresh(self, child: list[int]) -> list[int]:
        """A uniform sample not proposed before and, with ``feasible``, within it (a few hundred draws at most:
        then the last novel one)."""
        novel, feasible = None, self._feasible()
        for _ in range(FRESH_DRAWS if feasible else 20):
            if tuple(child) not in self.seen and tuple(child) not in self.pending:
                novel = child
                if feasible is None or feasible(child):
                    return child
            child = sample_choices(self.sizes, self.rng)
        self.misses += feasible is not None
        return novel or child

    def _feasible(self) -> Callable[[Sequence[int]], bool] | None:
        """``feasible``, unless it has found nothing ``MISSES`` times (a window the space hardly reaches: then the
        search's screening gives up as it would without it, instead of after minutes of counting)."""
        return self.feasible if self.misses < MISSES else None

    def _feasible_part(self, pool: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """The candidates of ``pool`` that ``feasible`` accepts (all of them without it, or when it accepts none)."""
        feasible = self._feasible()
        if feasible is None:
            return pool
        kept = [c for c in pool if feasible(c)]
        self.misses += not kept
        return kept or pool

    def tell(self, choices: Sequence[int], reward: float) -> None:
        choices, reward = self._check(choices, reward)
        self.num_told += 1
        key = tuple(choices)
        self.pending.discard(key)
        if key in self.seen:  # told again (a duplicate the searcher answered from its record): nothing new
            return
        self.seen.add(key)
        self.observed.append((choices, reward))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rng": copy.deepcopy(self.rng.bit_generator.state),
                "observed": [(list(c), r) for c, r in self.observed], "pending": sorted(self.pending),
                "options": {"warmup": self.warmup, "pool_size": self.pool_size,
                            "mutation_fraction": self.mutation_fraction, "parents": self.parents,
                            "refit_every": self.refit_every, "members": self.ensemble.members,
                            "hidden": self.ensemble.hidden, "fit_steps": self.ensemble.steps}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        options = dict(state["options"])
        self.ensemble = MLPEnsemble(options.pop("members"), options.pop("hidden"), options.pop("fit_steps"))
        for key, value in options.items():
            setattr(self, key, value)
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.observed = [(list(c), float(r)) for c, r in state["observed"]]
        self.seen = {tuple(c) for c, _ in self.observed}
        self.pending = {tuple(c) for c in state["pending"]}
        self._fitted_at = -1
