"""The search loop as a Ray Tune ``Searcher``: Tune's calls translated to :class:`~nas.search.loop.SearchLoop`,
nothing more (as Ray's OptunaSearch is over Optuna). Screening, de-duplication, the cache, start points, crash
replay and the records are the loop's; it runs without Ray."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from nas.search.loop import DONE, SearchLoop


class ControllerSearcher(Searcher):
    """Tune's searcher of a search: ``suggest`` and ``on_trial_complete`` go to the loop, ``save`` and
    ``restore`` (Tune's checkpoint of its searcher) too. It declares no Tune metric: the loop judges every
    trial by the search's reward, computed on the driver."""

    def __init__(self, loop: SearchLoop) -> None:
        super().__init__()
        self.loop = loop

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        answer = self.loop.suggest(trial_id)
        return Searcher.FINISHED if answer == DONE else answer

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self.loop.complete(trial_id, result, error)

    def save(self, checkpoint_path: str) -> None:
        self.loop.save(Path(checkpoint_path))

    def restore(self, checkpoint_path: str) -> None:
        self.loop.restore(Path(checkpoint_path))
