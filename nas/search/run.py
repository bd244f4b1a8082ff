"""A search's run directory opened once: its configuration, the space its records decode with, its records.

Every reader of a finished or running search above the report layer goes through :func:`open_run` (resume,
``nas-train RUN --trial N``, ``nas-proxy-check --from``), so a run always decodes with the space it was made
with: the one saved in its ``search.json`` (runs from before that was saved: MnasNet's paper space). The report,
a layer below, reads the same saved space with ``search_spaces.mnasnet.space_from_dict``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nas.errors import UserInputError
from nas.search.config import SearchConfig
from nas.search.run_files import read_records, read_trials, write_json
from nas.search.trial_record import TrialRecord
from search_spaces.mnasnet import MnasNetSpace
from search_spaces.spec import ArchSpec, load_spec

SETTINGS_FILE = "search.json"
SPACE_FILE = "space.json"  # the run's space as a space file (``nas-search --space`` reads it)


@dataclass
class SearchRun:
    """One search's run directory: ``config`` (search.json's), ``space`` (the run's own), ``saved`` (the
    whole search.json: versions, when it started)."""

    path: Path
    config: SearchConfig
    space: MnasNetSpace
    saved: dict[str, Any]

    def records(self) -> list[TrialRecord]:
        """The finished trials (the rows of trials.csv)."""
        return read_records(self.path / "trials.csv")

    def trials(self) -> pd.DataFrame:
        """trials.csv as a DataFrame (empty, with the columns, when there is none yet)."""
        return read_trials(self.path / "trials.csv")

    def num_classes(self) -> int:
        """The class count of the run's networks: best_b0.json's, else the configuration's, else 1000."""
        return trained_classes(self.path) or self.config.objective.num_classes or 1000

    def decode(self, choices: list[int], name: str, num_classes: int | None = None) -> ArchSpec:
        """A trial's choices as the network they are in this run: its space's, at the search's resolution (or
        the one they pick), its widths fitted to the target where the run fits them."""
        return self.config.decoder(num_classes or self.num_classes(), self.space)(choices, name=name)

    def trial_spec(self, trial: int) -> ArchSpec:
        """Trial ``trial`` as a B0 spec with its proxy figures in ``metrics`` and where it came from in
        ``provenance``; what ``nas-train RUN --trial N`` trains. UserInputError when the run has no such trial."""
        records = {record["trial"]: record for record in self.records()}
        if trial not in records:
            known = f"trials {min(records)}..{max(records)}" if records else "no trials yet"
            raise UserInputError(f"--trial {trial}: {self.path} has no trial {trial} ({known})")
        record = records[trial]
        spec = self.decode(record["choices"], name=f"{self.path.name}-trial-{trial}")
        return spec.replace(
            metrics={"flops": record["flops"], "params": record["params"], "proxy_accuracy": record["accuracy"],
                     "reward": record["reward"]},
            provenance={**spec.provenance, "tool": "nas-search", "run": str(self.path.resolve()), "trial": trial,
                        "status": record["status"], "choices": list(record["choices"]),
                        "proxy_data": self.config.proxy.data, "space": self.space.fingerprint})


def trained_classes(run_dir: str | Path) -> int | None:
    """The class count of the networks a run has trained (its best_b0.json's), or None before the first."""
    best = Path(run_dir) / "best_b0.json"
    return load_spec(best).num_classes if best.is_file() else None


def open_run(run_dir: str | Path, flag: str = "--resume") -> SearchRun:
    """The search run in ``run_dir``; a one-line UserInputError (naming ``flag``, the option that gave the
    directory) when it is not one or its search.json cannot be read."""
    path = Path(run_dir)
    settings = path / SETTINGS_FILE
    if not settings.is_file() and (path / "trials.csv").is_file():
        raise UserInputError(f"{flag}: {settings} is missing (the run's settings) though trials.csv is there: "
                             f"restore it, or start the search again there with its options (its files are set "
                             f"aside in orphaned-N/, and the result cache serves the candidates already trained)")
    if not settings.is_file():
        raise UserInputError(f"{flag}: {settings} not found; is {run_dir} a nas-search run directory?")
    try:
        saved = json.loads(settings.read_text())
        config = SearchConfig.from_dict(dict(saved["config"]))
        space = config.search_space()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"{flag}: cannot read {settings} ({exc})") from None
    return SearchRun(path, config, space, saved)


def write_space_file(run_dir: Path, space: MnasNetSpace) -> None:
    """Keep the run's space beside its records as a space file (``nas-search --space RUN/space.json``)."""
    write_json(Path(run_dir) / SPACE_FILE, space.config.to_file())
