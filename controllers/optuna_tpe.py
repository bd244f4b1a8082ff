"""Optuna's TPE sampler behind the controllers' ask/tell: the outside yardstick (``pip install -e ".[optuna]"``).

Each decision is one categorical parameter (``d0``, ``d1``, ...) of an in-memory Optuna study that maximises
the reward. TPE keeps no state of its own beyond its random numbers: it refits on the study's trials at every
ask. So the controller's state is the study's trials in order (told, or asked and waiting) and the number of
asks, and each ask reseeds the sampler from (seed, asks so far): a restored controller proposes exactly what
the saved one would have, without reading Optuna's private random state.

Choices told without an ask (start points, a resumed run's history) enter the study as finished trials.
Optuna's own log lines are held back during each call and its logger left as the caller set it.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from controllers.base import Controller

try:
    import optuna
except ImportError:  # an optional extra: the message says how to get it
    optuna = None


def _needs_optuna() -> None:
    if optuna is None:
        raise ValueError('controller optuna: Optuna is not installed (pip install -e ".[optuna]", or: pip '
                         'install optuna)')


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna's INFO lines (one per trial) and experimental warnings held back; its logger's level restored."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        logger.setLevel(level)


class OptunaTPE(Controller):
    """Optuna's TPE sampler (Bergstra et al., 2011; Optuna's defaults unless given): ``n_startup_trials``
    random proposals, then TPE. ``multivariate`` models the decisions jointly; ``constant_liar`` (on) keeps
    outstanding asks apart."""

    name = "optuna"

    def __init__(self, space: Any, seed: int = 0, n_startup_trials: int = 10, multivariate: bool = False,
                 constant_liar: bool = True) -> None:
        _needs_optuna()
        super().__init__(space, seed)
        if n_startup_trials < 0:
            raise ValueError("optuna: n_startup_trials must be >= 0")
        self.options = {"n_startup_trials": int(n_startup_trials), "multivariate": bool(multivariate),
                        "constant_liar": bool(constant_liar)}
        self.distributions = {f"d{i}": optuna.distributions.CategoricalDistribution(list(range(n)))
                              for i, n in enumerate(self.sizes)}
        # the study's trials in its order: choices and reward (None: asked, not told yet)
        self.trials: list[tuple[list[int], float | None]] = []
        self._new_study()

    def _new_study(self) -> None:
        """An in-memory study holding :attr:`trials` in order (finished, or running when not told yet)."""
        with _optuna_quiet():
            self.study = optuna.create_study(direction="maximize")
        trials, self.trials = self.trials, []
        self.pending: dict[tuple[int, ...], list[int]] = {}  # choices -> numbers of its trials not told yet
        for choices, reward in trials:
            self._add(choices, reward)

    def _sampler(self) -> Any:
        seed = int(np.random.SeedSequence([self.seed, self.num_asked]).generate_state(1)[0])
        with _optuna_quiet():
            return optuna.samplers.TPESampler(seed=seed, **self.options)

    def _add(self, choices: Sequence[int], reward: float | None) -> None:
        """A trial Optuna did not propose: finished with ``reward``, or running (None) until told."""
        params = {name: int(c) for name, c in zip(self.distributions, choices)}
        state = optuna.trial.TrialState.RUNNING if reward is None else optuna.trial.TrialState.COMPLETE
        with _optuna_quiet():
            self.study.add_trial(optuna.trial.create_trial(params=params, distributions=self.distributions,
                                                           value=reward, state=state))
        self._added(list(choices), reward)

    def _added(self, choices: list[int], reward: float | None) -> None:
        if reward is None:
            self.pending.setdefault(tuple(choices), []).append(len(self.trials))
        self.trials.append((choices, reward))

    def ask(self) -> list[int]:
        self.study.sampler = self._sampler()
        with _optuna_quiet():
            trial = self.study.ask(self.distributions)
        self.num_asked += 1
        choices = [int(trial.params[name]) for name in self.distributions]
        self._added(choices, None)
        return choices

    def tell(self, choices: Sequence[int], reward: float) -> None:
        choices, reward = self._check(choices, reward)
        self.num_told += 1
        waiting = self.pending.get(tuple(choices))
        if not waiting:  # told without an ask: a start point, or a trial recorded before a resume
            self._add(choices, reward)
            return
        number = waiting.pop(0)
        if not waiting:
            del self.pending[tuple(choices)]
        self.trials[number] = (choices, reward)
        with _optuna_quiet():
            self.study.tell(number, reward)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "options": dict(self.options),
                "trials": [(list(c), r) for c, r in self.trials]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.options = dict(state["options"])
        self.trials = [([int(x) for x in c], None if r is None else float(r)) for c, r in state["trials"]]
        self._new_study()
