"""The models of a proxy check: architectures sampled across a FLOPs window, a run's best, the references."""
from __future__ import annotations

import math

import numpy as np

from nas.errors import UserInputError
from nas.network.counting import check_size, profile
from nas.proxy_check.config import Candidate, ProxyCheckConfig
from nas.proxy_check.table import read_reference_table
from nas.search.config import SearchConfig
from nas.search.run import open_run
from search_spaces import REFERENCES
from search_spaces.mnasnet import MnasNetSpace
from search_spaces.spec import load_spec


def sample_stratified(config: ProxyCheckConfig, space: MnasNetSpace, num_classes: int, count: int, seed: int,
                      exclude: set[str] | None = None) -> list[Candidate]:
    """``count`` architectures of ``space`` with analytic FLOPs spread evenly (log scale) over the window.

    One per FLOPs stratum, drawn by rejection from the space; a stratum the space cannot reach within the
    attempt bound takes the closest architecture drawn.
    """
    search = config.search
    low, high = (math.log(f * search.objective.target_flops) for f in config.window)
    edges = np.linspace(low, high, count + 1)
    rng = np.random.default_rng(seed)
    seen = set(exclude or ())
    chosen: list[Candidate] = []
    for stratum in range(count):
        best, best_distance = None, float("inf")
        middle = (edges[stratum] + edges[stratum + 1]) / 2
        for _ in range(4000):
            spec = space.decode(space.sample(rng), resolution=search.objective.resolution, num_classes=num_classes)
            if " ".join(spec.block_strings) in seen:
                continue
            flops = math.log(profile(spec, method="analytic")["flops"])
            if edges[stratum] <= flops <= edges[stratum + 1]:
                best = spec
                break
            if abs(flops - middle) < best_distance:
                best, best_distance = spec, abs(flops - middle)
        if best is not None:
            seen.add(" ".join(best.block_strings))
            chosen.append(Candidate(f"sampled-{stratum:02d}", "sampled", best.replace(name=f"sampled-{stratum:02d}")))
    return chosen


def reference_candidates(search: SearchConfig, num_classes: int) -> list[Candidate]:
    """The shipped reference networks at the search's resolution and class count."""
    out = []
    for path in sorted(REFERENCES.glob("*.json")):
        spec = load_spec(path).replace(resolution=search.objective.resolution, num_classes=num_classes)
        out.append(Candidate(path.stem, "reference", spec))
    return out


def from_run_candidates(config: ProxyCheckConfig, num_classes: int) -> list[Candidate]:
    """A run's best half of ``--models`` by reward (trained ones), the rest sampled from the space."""
    run = open_run(config.from_run, "--from")
    space = run.space  # the run's own: its choices index into it
    records = sorted((r for r in run.records() if r["status"] == "ok"), key=lambda r: -r["reward"])
    best = []
    for record in records[: max(1, config.models // 2)]:
        spec = run.decode(record["choices"], name=f"trial-{int(record['trial']):04d}", num_classes=num_classes)
        best.append(Candidate(spec.name, "from-run", spec))
    seen = {" ".join(c.spec.block_strings) for c in best}
    rest = config.models - len(best)
    return best + sample_stratified(config, space, num_classes, rest, config.search.proxy.seed, seen)


def table_candidates(config: ProxyCheckConfig, num_classes: int) -> list[Candidate]:
    """The networks of ``--reference-table``, at the search's resolution; refused when the table was trained
    on another number of classes than the check's data has."""
    known = read_reference_table(config.reference_table)
    classes = {model.spec.num_classes for model in known}
    if classes != {num_classes}:
        raise UserInputError(f"--reference-table {config.reference_table}: its networks were trained on "
                             f"{'/'.join(map(str, sorted(classes)))} classes, --data has {num_classes}")
    return [Candidate(model.name, model.kind, model.spec.replace(resolution=config.search.objective.resolution), model)
            for model in known]


def select_candidates(config: ProxyCheckConfig, num_classes: int) -> list[Candidate]:
    """The models of the check, in a fixed order for a given configuration; each within the size bound
    (check_size) at the resolutions it is counted and trained at."""
    chosen = _candidates(config, num_classes)
    search = config.search
    for candidate in chosen:
        check_size(candidate.spec, max(search.objective.resolution, search.proxy.resolution,
                                       config.reference_resolution or 0), num_classes)
    return chosen


def _candidates(config: ProxyCheckConfig, num_classes: int) -> list[Candidate]:
    if config.reference_table:
        return table_candidates(config, num_classes)
    if config.from_run:
        chosen = from_run_candidates(config, num_classes)
    else:
        chosen = sample_stratified(config, config.search.search_space(), num_classes, config.models,
                                   config.search.proxy.seed)
    if config.references:
        chosen += reference_candidates(config.search, num_classes)
    return chosen
