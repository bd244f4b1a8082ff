"""The search's final stage: its finalists trained for real (``nas-search --finalists K``).

The proxy ranks candidates after a few hundred steps; what a user gets is the network after real training.
So the K best candidates by proxy reward (distinct architectures) and the space's nearest EfficientNet-B0 are
each trained with nas-train's recipe on the search's training split (the same split: the search's seed),
and judged on its held-out split, image by image. The winner is the finalist with the best held-out
accuracy; each finalist's margin over the B0 finalist is a paired difference over the same held-out images
with its 95% interval. The test split is never read: choosing is the search's job, judging the choice on
the test split is the user's (``nas-train``).

Outputs, in the run directory: ``finalists/<name>/`` (a nas-train run each, resumed when interrupted),
``finalists.csv`` (one row per finalist) and ``best_b0.json`` rewritten with the winner, its held-out
accuracy and the margin in ``provenance.finalists``.

A stage of the search: the training of one finalist is injected (``train``: nas-train's, from
:mod:`nas.retrain.finalists`, in the commands and the API), and the held-out images are judged by the one
evaluation loop every training uses (:func:`nas.training.device_data.predictions`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from nas.console import say
from nas.data.datasets import DataRef
from nas.engine.runner import Runner
from nas.files import RunLock, atomic_write, save_spec
from nas.latency.tables import load_table
from nas.network.scaling import stem1_b0_within
from nas.report import refresh_report
from nas.search.run import SearchRun, open_run
from search_spaces import REFERENCES
from search_spaces.spec import ArchSpec, architecture_hash, load_spec

FOLDER, TABLE = "finalists", "finalists.csv"
B0_NAME = "efficientnet_b0-nearest"
HAND_FIX_NAME = "b0-stem1-scaled"  # B0 with a stride-1 stem, narrowed to the target (small images only)
Z95 = 1.959964
PROXY_WINNER_ONLY = ("trial_id", "source", "choices", "start_point", "status")  # facts of the proxy's winner
TRAINED_SPEC, TRAINED_WEIGHTS = "spec.json", "best.pt"  # in a nas-train run directory (docs/design.md)


@dataclass
class Finalist:
    """One network to train: a trial of the search, the space's nearest B0 or the hand-fixed B0 (``trial``
    None)."""

    name: str
    trial: int | None
    spec: ArchSpec
    proxy_reward: float | None
    is_b0: bool = False


# nas-train of one finalist in its run directory ``finalists/<name>/`` (resumed or read back when it has run):
# (run, finalist, epochs, training images, log) -> its result.json
TrainFinalist = Callable[[SearchRun, "Finalist", float, int, Callable[[str], None]], dict[str, Any]]


def choose_finalists(run: SearchRun, k: int) -> list[Finalist]:
    """The ``k`` best trained candidates by proxy reward (one per architecture), the space's nearest B0 (one of
    them when the search found it) and, for small images, the hand-fixed B0 (:func:`hand_fix`). In a space
    that searches the downsampling or the input size, the best of each family (downsampling level and input
    size) come first (the best families first),
    then the rest by reward: the short proxy hardly tells the levels apart, where real training separates
    them by several points."""
    trials = run.trials()
    ok = trials[trials["status"] == "ok"].sort_values(["reward", "trial"], ascending=[False, True])
    order = list(ok.index)
    if run.space.searches_strides or run.space.searches_resolution:  # decoded for their family only: no fit
        levels: dict[tuple[int, int], int] = {}
        for index in order:
            shape = run.space.decode(ok.at[index, "choices"])
            levels.setdefault((shape.downsampling, shape.resolution), index)
        order = list(levels.values()) + [index for index in order if index not in levels.values()]
    chosen: dict[str, Finalist] = {}
    for index in order:
        if len(chosen) == k:
            break
        trial = int(ok.at[index, "trial"])
        spec = run.trial_spec(trial)
        chosen.setdefault(architecture_hash(spec), Finalist(f"trial-{trial:04d}", trial, spec,
                                                            float(ok.at[index, "reward"])))
    b0 = load_spec(Path(REFERENCES) / "efficientnet_b0.json").replace(resolution=run.config.objective.resolution)
    b0 = run.decode(run.space.nearest(b0), B0_NAME, run.num_classes())  # at the stated size, fitted where the run fits
    key = architecture_hash(b0)
    if key in chosen:
        chosen[key].is_b0 = True
    else:
        chosen[key] = Finalist(B0_NAME, None, b0, None, is_b0=True)
    fixed = hand_fix(run)
    if fixed is not None:
        chosen.setdefault(architecture_hash(fixed), Finalist(HAND_FIX_NAME, None, fixed, None))
    return list(chosen.values())


def hand_fix(run: SearchRun) -> ArchSpec | None:
    """In a space that searches the downsampling (the default for images of 64 px or less) with a FLOPs target
    and no latency target: EfficientNet-B0 with a stride-1 stem at the widest width within the target, the
    obvious fix by hand for small images, so that the search never returns a network its held-out split
    ranks below it (on CIFAR-10 one default search's winner tested 1.85 points below it, docs/search.md).
    It is outside the space (its stem and head are narrowed too). None otherwise."""
    config = run.config
    if not run.space.searches_strides or config.objective.target_flops is None or config.objective.target_latency_ms:
        return None
    target = config.with_counted_target(run.num_classes()).objective.target_flops  # a reference's name (b0) counted
    fixed = stem1_b0_within(float(target), config.objective.resolution, run.num_classes())
    return None if fixed is None else fixed.replace(name=HAND_FIX_NAME)


def held_out_correct(spec: ArchSpec, checkpoint: Path, data: Any) -> np.ndarray:
    """Whether the checkpoint's network (its chosen weights, its normalisation) gets each held-out image right:
    the evaluation loop of every training, on this process's CPU."""
    import torch  # loaded when finalists are judged

    from nas.network.builder import build_model
    from nas.training.checkpoints import check_architecture, load_checkpoint
    from nas.training.device_data import DeviceData, predictions
    from nas.training.full import selected_weights

    state = load_checkpoint(checkpoint)
    spec = spec.replace(num_classes=int(state["num_classes"]))
    check_architecture(state, architecture_hash(spec, spec.num_classes), spec.name, str(checkpoint))
    network = build_model(spec)
    network.load_state_dict(selected_weights(state))
    mean, std = (torch.tensor(state[k], dtype=torch.float32).view(1, 3, 1, 1) for k in ("mean", "std"))
    held_out = DeviceData(data.x_val, data.y_val, torch.device("cpu"), mean, std)
    return (predictions(network, held_out, autocast=False) == held_out.y).numpy()


def paired_difference(mine: np.ndarray, theirs: np.ndarray) -> tuple[float, float, float]:
    """Accuracy difference over the same images, with its 95% interval (normal approximation of the mean of
    per-image differences, which is what pairing buys: the images both get right or wrong cancel)."""
    differences = mine.astype(float) - theirs.astype(float)
    mean = float(differences.mean())
    if len(differences) < 2:
        return mean, -math.inf, math.inf
    half = Z95 * float(differences.std(ddof=1)) / math.sqrt(len(differences))
    return mean, mean - half, mean + half


def judge(run: SearchRun, finalists: list[Finalist], results: list[dict[str, Any]],
          data_at: Callable[[int], Any]) -> pd.DataFrame:
    """One row per finalist: held-out accuracy recomputed image by image (``data_at(resolution)``: the search's
    split at a finalist's resolution: the same images at each), and the paired margin over B0's."""
    specs = {f.name: load_spec(run.path / FOLDER / f.name / TRAINED_SPEC) for f in finalists}
    correct = {f.name: held_out_correct(specs[f.name], run.path / FOLDER / f.name / TRAINED_WEIGHTS,
                                        data_at(specs[f.name].resolution)) for f in finalists}
    data = data_at(run.config.objective.resolution)
    b0 = next(f for f in finalists if f.is_b0)
    latency = predicted_latency(run)
    rows = []
    for finalist, result in zip(finalists, results):
        margin, low, high = paired_difference(correct[finalist.name], correct[b0.name])
        accuracy = float(correct[finalist.name].mean())
        rows.append({"name": finalist.name, "trial": finalist.trial, "is_b0": finalist.is_b0,
                     "proxy_reward": finalist.proxy_reward, "flops": result["flops"], "params": result["params"],
                     "held_out_accuracy": accuracy,
                     "reward": run.config.objective.score(accuracy, result["flops"], latency(finalist.spec)),
                     "held_out_images": len(data.y_val),
                     "margin_over_b0": margin, "low95": low, "high95": high,
                     "beyond_noise": bool(low > 0 or high < 0), "epochs": result["recipe"]["epochs"]})
    return pd.DataFrame(rows).astype({"trial": "Int64"})


def predicted_latency(run: SearchRun) -> Callable[[ArchSpec], float]:
    """The latency (ms) the run's table predicts for a spec, for a search with a latency target; else 0."""
    if not (run.config.objective.target_latency_ms and run.config.objective.latency_table):
        return lambda spec: 0.0

    table = load_table(run.config.objective.latency_table, run.space)
    return table.predict


def rewrite_best(run: SearchRun, table: pd.DataFrame, finalists: list[Finalist]) -> dict[str, Any]:
    """best_b0.json becomes the finalists' winner: the best search reward with the held-out accuracy in place
    of the proxy's (so a finalist over a hard target does not win on accuracy alone); the proxy's order
    breaks ties."""
    winner = table.sort_values("reward", ascending=False, kind="stable").iloc[0]
    finalist = next(f for f in finalists if f.name == winner["name"])
    previous = load_spec(run.path / "best_b0.json")
    summary = {"winner": finalist.name, "held_out_accuracy": round(float(winner["held_out_accuracy"]), 4),
               "margin_over_b0": round(float(winner["margin_over_b0"]), 4),
               "interval95": [round(float(winner["low95"]), 4), round(float(winner["high95"]), 4)],
               "beyond_noise": bool(winner["beyond_noise"]), "epochs": float(winner["epochs"]),
               "held_out_images": int(winner["held_out_images"]), "compared": list(table["name"])}
    spec = finalist.spec.replace(
        name=previous.name,
        metrics={**finalist.spec.metrics, "held_out_accuracy": summary["held_out_accuracy"],
                 "flops": int(winner["flops"]), "params": int(winner["params"])},
        provenance={**{k: v for k, v in previous.provenance.items() if k not in PROXY_WINNER_ONLY},
                    **finalist.spec.provenance, "trial": finalist.trial,
                    "choices": run.space.encode(finalist.spec) if run.space.contains(finalist.spec) else None,
                    "finalists": summary,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    save_spec(spec, run.path / "best_b0.json")
    return summary


def verdict(summary: dict[str, Any]) -> str:
    """One line for the console: the winner and whether its margin over B0 is beyond the noise."""
    low, high = summary["interval95"]
    if summary["winner"] == B0_NAME:
        return (f"finalists: the space's nearest EfficientNet-B0 trained best (held-out "
                f"{summary['held_out_accuracy']:.4f}); best_b0.json is it")
    words = "beyond the noise" if summary["beyond_noise"] else "within the noise"
    who = summary["winner"]
    if who == HAND_FIX_NAME:
        who += " (B0 with a stride-1 stem, narrowed to the target: no searched finalist did better)"
    return (f"finalists: {who} wins (held-out {summary['held_out_accuracy']:.4f}), "
            f"{summary['margin_over_b0'] * 100:+.1f} points over the space's nearest EfficientNet-B0 "
            f"(95% interval {low * 100:+.1f} to {high * 100:+.1f} on {summary['held_out_images']} held-out images: "
            f"{words})")


def run_finalists(run: SearchRun, k: int, epochs: float, train: TrainFinalist,
                  log: Callable[[str], None] = say) -> dict[str, Any]:
    """Train the finalists with ``train``, judge them, write finalists.csv and best_b0.json; the winner's
    summary."""
    finalists = choose_finalists(run, k)
    loaded: dict[int, Any] = {}
    proxy = run.config.proxy

    def data_at(resolution: int) -> Any:  # decoded once per size a finalist runs at
        if resolution not in loaded:
            loaded[resolution] = DataRef(proxy.data, resolution, proxy.val_fraction, proxy.seed).load()
        return loaded[resolution]

    data = data_at(run.config.objective.resolution)
    log(f"finalists: {len(finalists)} networks ({', '.join(f.name for f in finalists)}) trained with nas-train's "
        f"recipe for {epochs:g} epochs, judged on the search's held-out split")

    resources = run.config.resources
    with Runner(resources.address, bool(resources.debug)):  # one Ray instance for every finalist's training
        results = [train(run, finalist, epochs, len(data.y_train), log) for finalist in finalists]
    table = judge(run, finalists, results, data_at)
    atomic_write(run.path / TABLE, table.to_csv(index=False))
    summary = rewrite_best(run, table, finalists)
    log(verdict(summary))
    return summary


def train_finalists(config: Any, train: TrainFinalist) -> dict[str, Any] | None:
    """After a finished search (its SearchConfig), the finalists it asks for (``config.final_stage``: none when
    0) trained with ``train`` and judged under the run's lock; the run's report rewritten. The winner's summary,
    or None."""
    stage = config.final_stage
    if not stage.finalists:
        return None
    with RunLock(config.out):
        summary = run_finalists(open_run(config.out, "--finalists"), stage.finalists, stage.epochs, train)
    refresh_report(Path(config.out))
    return summary
