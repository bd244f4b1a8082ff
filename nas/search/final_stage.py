"""The search's final stage: its finalists trained for real (``nas-search --finalists K``).

The proxy ranks candidates after a few hundred steps; what a user gets is the network after real training.
So the final stage trains, with nas-train's recipe on the search's training split (the same split: the
search's seed), and judges on its held-out split, image by image:

- the K best candidates by proxy reward, one per architecture and each from another family (downsampling
  level or input size) or at least MIN_DECISIONS_APART decisions from the others: near-copies of one network
  re-measure the same thing;
- the space's nearest EfficientNet-B0;
- in a space that searches the downsampling or the input size, with a FLOPs target, the *simple fixes*:
  EfficientNet-B0 itself, not a searched network, fitted to the target at each downsampling level and at each
  input size the search tries (:func:`simple_fixes`), the hand fix (B0 with a stride-1 stem) among them.

Successive halving over real trainings: when there is something to choose, every finalist first trains
SHORT_FRACTION of the epochs (whole epochs, at least one; in ``finalists/short/``); the best ceil(K / ETA) searched finalists by held-out
reward, the space's B0 and the best simple fix then train the full epochs (``finalists/<name>/``). The
winner is the finalist with the best reward on the held-out split at full length; its margins over B0 and
over the best simple fix are paired differences over the same held-out images, each with its 95% interval.
The test split is never read: choosing is the search's job, judging the choice on the test split is the
user's (``nas-train``).

Outputs, in the run directory: ``finalists/<name>/`` (a nas-train run each, resumed when interrupted),
``finalists.csv`` (one row per finalist, at the last length it trained) and ``best_b0.json`` rewritten with the
winner, its held-out accuracy and the margins in ``provenance.finalists``.

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
from nas.network.costs import conv_output_size
from nas.network.scaling import b0_at_level, stem1_b0_within
from nas.report import live_report
from nas.search.run import SearchRun, open_run
from search_spaces import REFERENCES
from search_spaces.spec import ArchSpec, architecture_hash, load_spec

FOLDER, TABLE = "finalists", "finalists.csv"
SHORT_FOLDER = f"{FOLDER}/short"  # the first, short trainings of successive halving
B0_NAME = "efficientnet_b0-nearest"
HAND_FIX_NAME = "b0-stem1-scaled"  # B0 with a stride-1 stem, narrowed to the target (small images only)
Z95 = 1.959964
PROXY_WINNER_ONLY = ("trial_id", "source", "choices", "start_point", "status")  # facts of the proxy's winner
TRAINED_SPEC, TRAINED_WEIGHTS = "spec.json", "best.pt"  # in a nas-train run directory (docs/design.md)
MIN_DECISIONS_APART = 3  # two searched finalists of one family differ in at least this many decisions
ETA, SHORT_FRACTION = 3, 1 / 3  # successive halving: 1 in ETA searched finalists continues, after 1/3 of the epochs
FINAL_MAP = (2, 8)  # a simple fix's last feature map, in pixels: B0 at 224 px ends at 7


@dataclass
class Finalist:
    """One network to train: a trial of the search, the space's nearest B0, or a simple fix of B0 (``trial``
    None)."""

    name: str
    trial: int | None
    spec: ArchSpec
    proxy_reward: float | None
    is_b0: bool = False
    simple_fix: bool = False


# nas-train of one finalist in its run directory ``<folder>/<name>/`` (resumed or read back when it has run):
# (run, finalist, epochs, training images, log, folder) -> its result.json
TrainFinalist = Callable[[SearchRun, "Finalist", float, int, Callable[[str], None], str], dict[str, Any]]


def choose_finalists(run: SearchRun, k: int) -> list[Finalist]:
    """The ``k`` best trained candidates by proxy reward (one per architecture, near-copies left out:
    :func:`searched_finalists`), the space's nearest B0 (one of them when the search found it) and the simple
    fixes of B0 (:func:`simple_fixes`)."""
    chosen = {architecture_hash(f.spec): f for f in searched_finalists(run, k)}
    b0 = load_spec(Path(REFERENCES) / "efficientnet_b0.json").replace(resolution=run.config.objective.resolution)
    b0 = run.decode(run.space.nearest(b0), B0_NAME, run.num_classes())  # at the stated size, fitted where the run fits
    key = architecture_hash(b0)
    if key in chosen:
        chosen[key].is_b0 = True
    else:
        chosen[key] = Finalist(B0_NAME, None, b0, None, is_b0=True)
    for fix in simple_fixes(run):
        chosen.setdefault(architecture_hash(fix), Finalist(fix.name, None, fix, None, simple_fix=True))
    return list(chosen.values())


def final_stage_plan(config: Any, space: Any) -> str:
    """What the final stage of a search with ``config`` (a SearchConfig) in ``space`` will train, in one line
    said at the search's start."""
    stage, objective = config.final_stage, config.objective
    fixes = has_simple_fixes(config, space)
    where = "its own input size" if space.searches_resolution else f"{objective.resolution} px"
    line = (f"after the search: {stage.finalists} finalist{'s' * (stage.finalists > 1)} by proxy reward, the "
            f"space's nearest EfficientNet-B0")
    if fixes:
        line += (f" and the simple fixes of B0 (fitted to the target at each downsampling level"
                 f"{' and input size' if space.searches_resolution else ''})")
    line += f" trained {stage.epochs:g} epochs each with nas-train's recipe at {where}"
    if fixes or stage.finalists > 1:
        line += (f", successive halving where there is a choice (all for a third of that, then the best 1 in {ETA} "
                 f"searched, B0 and the best fix to full length)")
    return line + ", the best on the held-out split kept (--finalists 0: the proxy's winner, no training)"


def searched_finalists(run: SearchRun, k: int) -> list[Finalist]:
    """The ``k`` best trained candidates by proxy reward, one per architecture, each of another family
    (downsampling level and input size) than the others or at least MIN_DECISIONS_APART decisions from each
    of its family. In a space that searches the downsampling or the input size, the best of each family come
    first (the best families first), then the rest by reward: the short proxy hardly tells the levels apart,
    where real training separates them by several points."""
    trials = run.trials()
    ok = trials[trials["status"] == "ok"].sort_values(["reward", "trial"], ascending=[False, True])
    order = list(ok.index)
    family: dict[int, tuple[int, int]] = {}
    if run.space.searches_strides or run.space.searches_resolution:  # decoded for their family only: no fit
        levels: dict[tuple[int, int], int] = {}
        for index in order:
            shape = run.space.decode(ok.at[index, "choices"])
            family[index] = (shape.downsampling, shape.resolution)
            levels.setdefault(family[index], index)
        order = list(levels.values()) + [index for index in order if index not in levels.values()]
    chosen: dict[str, Finalist] = {}
    taken: list[int] = []
    for index in order:
        if len(chosen) == k:
            break
        choices = ok.at[index, "choices"]
        if any(family.get(index) == family.get(other) and _apart(choices, ok.at[other, "choices"])
               < MIN_DECISIONS_APART for other in taken):
            continue
        trial = int(ok.at[index, "trial"])
        spec = run.trial_spec(trial)
        key = architecture_hash(spec)
        if key not in chosen:
            chosen[key] = Finalist(f"trial-{trial:04d}", trial, spec, float(ok.at[index, "reward"]))
            taken.append(index)
    return list(chosen.values())


def _apart(mine: list[int], theirs: list[int]) -> int:
    """How many decisions two candidates' choices differ in."""
    return sum(a != b for a, b in zip(mine, theirs))


def has_simple_fixes(config: Any, space: Any) -> bool:
    """Whether a search with ``config`` (a SearchConfig) in ``space`` trains simple fixes of B0 among its
    finalists: a space that searches the downsampling or the input size, a FLOPs target, no latency target."""
    objective = config.objective
    return bool((space.searches_strides or space.searches_resolution) and objective.target_flops is not None
                and not objective.target_latency_ms)


def simple_fixes(run: SearchRun) -> list[ArchSpec]:
    """The obvious fixes of EfficientNet-B0 for the run's images, where :func:`has_simple_fixes` (none
    otherwise). In a space that searches the downsampling (the default for images of 64 px or less), the hand
    fix: B0 with a stride-1 stem at the widest width within the target, the obvious fix by hand for small
    images, so that the search never returns a network its held-out split ranks below it (on CIFAR-10 one
    default search's winner tested 1.85 points below it, docs/search.md). Then B0 fitted to the target
    (:func:`nas.network.scaling.b0_at_level`) at each downsampling level whose last feature map is FINAL_MAP
    pixels at the stated size, and at each other input size the search tries, the level whose map comes
    nearest 4 pixels. Outside the space (their stems and heads are scaled too)."""
    config, space = run.config, run.space
    if not has_simple_fixes(config, space):
        return []
    classes, stated = run.num_classes(), config.objective.resolution
    target = float(config.with_counted_target(classes).objective.target_flops)  # a reference's name counted
    fixed = stem1_b0_within(target, stated, classes) if space.searches_strides else None
    fixes = [] if fixed is None else [fixed.replace(name=HAND_FIX_NAME)]
    for resolution in space.config.resolutions or [stated]:
        levels = [level for level in (32, 16, 8, 4, 2) if FINAL_MAP[0] <= _last_map(resolution, level)
                  <= FINAL_MAP[1]]
        if resolution != stated:
            levels = sorted(levels, key=lambda level: abs(_last_map(resolution, level) - 4))[:1]
        for level in levels:
            fix = b0_at_level(target, resolution, classes, level)
            if fix is not None and architecture_hash(fix) not in {architecture_hash(f) for f in fixes}:
                fixes.append(fix.replace(name=f"b0-{level}x-{resolution}px"))
    return fixes


def _last_map(resolution: int, downsampling: int) -> int:
    """The side of the last feature map of a network at ``resolution`` that halves it log2(downsampling)
    times (3x3 stride-2 convolutions with padding 1)."""
    size = resolution
    for _ in range(int(math.log2(downsampling))):
        size = conv_output_size(size, 3, 2)
    return size


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
          data_at: Callable[[int], Any], folder: str = FOLDER) -> pd.DataFrame:
    """One row per finalist trained in ``folder``: held-out accuracy recomputed image by image
    (``data_at(resolution)``: the search's split at a finalist's resolution: the same images at each), and the
    paired margins over B0's and over the best simple fix's (the one of best held-out accuracy; none without
    simple fixes) at the same length."""
    specs = {f.name: load_spec(run.path / folder / f.name / TRAINED_SPEC) for f in finalists}
    correct = {f.name: held_out_correct(specs[f.name], run.path / folder / f.name / TRAINED_WEIGHTS,
                                        data_at(specs[f.name].resolution)) for f in finalists}
    data = data_at(run.config.objective.resolution)
    b0 = next(f for f in finalists if f.is_b0)
    fixes = [f for f in finalists if f.simple_fix]
    best_fix = max(fixes, key=lambda f: correct[f.name].mean(), default=None)
    latency = predicted_latency(run)
    rows = []
    for finalist, result in zip(finalists, results):
        margin, low, high = paired_difference(correct[finalist.name], correct[b0.name])
        over_fix, fix_low, fix_high = (paired_difference(correct[finalist.name], correct[best_fix.name])
                                       if best_fix is not None else (math.nan,) * 3)
        accuracy = float(correct[finalist.name].mean())
        rows.append({"name": finalist.name, "trial": finalist.trial, "is_b0": finalist.is_b0,
                     "simple_fix": finalist.simple_fix, "proxy_reward": finalist.proxy_reward,
                     "flops": result["flops"], "params": result["params"], "held_out_accuracy": accuracy,
                     "reward": run.config.objective.score(accuracy, result["flops"], latency(finalist.spec)),
                     "held_out_images": len(data.y_val),
                     "margin_over_b0": margin, "low95": low, "high95": high,
                     "beyond_noise": bool(low > 0 or high < 0),
                     "best_fix": None if best_fix is None else best_fix.name,
                     "margin_over_best_fix": over_fix, "fix_low95": fix_low, "fix_high95": fix_high,
                     "epochs": result["recipe"]["epochs"]})
    return pd.DataFrame(rows).astype({"trial": "Int64"})


def predicted_latency(run: SearchRun) -> Callable[[ArchSpec], float]:
    """The latency (ms) the run's table predicts for a spec, for a search with a latency target; else 0."""
    if not (run.config.objective.target_latency_ms and run.config.objective.latency_table):
        return lambda spec: 0.0

    table = load_table(run.config.objective.latency_table, run.space)
    return table.predict


def continuing(finalists: list[Finalist], short: pd.DataFrame) -> list[Finalist]:
    """Who trains the full epochs after the short trainings (``short``: their judged table): the best
    ceil(K / ETA) searched finalists by held-out reward, the space's B0 and the best simple fix."""
    searched = [f for f in finalists if not f.is_b0 and not f.simple_fix]
    reward = dict(zip(short["name"], short["reward"]))
    best = sorted(searched, key=lambda f: -reward[f.name])[:math.ceil(len(searched) / ETA)]
    fix = short["best_fix"].dropna()
    keep = {f.name for f in best} | {f.name for f in finalists if f.is_b0} | set(fix.iloc[:1])
    return [f for f in finalists if f.name in keep]


def short_epochs(epochs: float) -> float:
    """The length of the short trainings: SHORT_FRACTION of ``epochs``, whole epochs, at least one."""
    return max(1.0, float(math.floor(epochs * SHORT_FRACTION + 1e-9)))


def halves(finalists: list[Finalist], epochs: float) -> bool:
    """Whether short trainings would leave anyone out (more searched finalists than continue, or more than one
    simple fix) and be shorter than the full ``epochs``."""
    searched = sum(not f.is_b0 and not f.simple_fix for f in finalists)
    choice = searched > math.ceil(searched / ETA) or sum(f.simple_fix for f in finalists) > 1
    return choice and short_epochs(epochs) < epochs


def rewrite_best(run: SearchRun, table: pd.DataFrame, finalists: list[Finalist]) -> dict[str, Any]:
    """best_b0.json becomes the finalists' winner: among those trained the full epochs, the best search reward
    with the held-out accuracy in place of the proxy's (so a finalist over a hard target does not win on
    accuracy alone); the proxy's order breaks ties."""
    full = table[table["full_length"]] if "full_length" in table else table
    winner = full.sort_values("reward", ascending=False, kind="stable").iloc[0]
    finalist = next(f for f in finalists if f.name == winner["name"])
    previous = load_spec(run.path / "best_b0.json")
    summary = {"winner": finalist.name, "held_out_accuracy": round(float(winner["held_out_accuracy"]), 4),
               "margin_over_b0": round(float(winner["margin_over_b0"]), 4),
               "interval95": [round(float(winner["low95"]), 4), round(float(winner["high95"]), 4)],
               "beyond_noise": bool(winner["beyond_noise"]), "epochs": float(winner["epochs"]),
               "held_out_images": int(winner["held_out_images"]), "compared": list(table["name"])}
    if isinstance(winner.get("best_fix"), str):
        low, high = float(winner["fix_low95"]), float(winner["fix_high95"])
        summary.update({"best_fix": winner["best_fix"],
                        "margin_over_best_fix": round(float(winner["margin_over_best_fix"]), 4),
                        "fix_interval95": [round(low, 4), round(high, 4)], "fix_beyond_noise": low > 0 or high < 0})
    if "full_length" in table:
        summary["full_length"] = list(full["name"])
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
    """One line for the console: the winner and its margins over B0 and over the best simple fix, each beyond
    the noise or within it."""
    if summary["winner"] == B0_NAME:
        return (f"finalists: the space's nearest EfficientNet-B0 trained best (held-out "
                f"{summary['held_out_accuracy']:.4f}); best_b0.json is it")
    who = summary["winner"]
    if who == HAND_FIX_NAME:
        who += " (B0 with a stride-1 stem, narrowed to the target: no searched finalist did better)"
    elif who == summary.get("best_fix"):
        who += " (a simple fix of B0, fitted to the target: no searched finalist did better)"
    line = (f"finalists: {who} wins (held-out {summary['held_out_accuracy']:.4f}), "
            f"{_margin(summary['margin_over_b0'], summary['interval95'])} over the space's nearest "
            f"EfficientNet-B0")
    if "best_fix" in summary and summary["best_fix"] != summary["winner"]:
        line += (f", {_margin(summary['margin_over_best_fix'], summary['fix_interval95'])} over the best simple "
                 f"fix ({summary['best_fix']})")
    return line + f", on {summary['held_out_images']} held-out images"


def _margin(margin: float, interval: list[float]) -> str:
    low, high = interval
    words = "beyond the noise" if low > 0 or high < 0 else "within the noise"
    return f"{margin * 100:+.1f} points (95% interval {low * 100:+.1f} to {high * 100:+.1f}: {words})"


def run_finalists(run: SearchRun, k: int, epochs: float, train: TrainFinalist,
                  log: Callable[[str], None] = say) -> dict[str, Any]:
    """Train the finalists with ``train`` (successive halving when there is something to choose: short
    trainings first, then the full epochs for those who continue), judge them, write finalists.csv and
    best_b0.json; the winner's summary."""
    finalists = choose_finalists(run, k)
    loaded: dict[int, Any] = {}
    proxy = run.config.proxy

    def data_at(resolution: int) -> Any:  # decoded once per size a finalist runs at
        if resolution not in loaded:
            loaded[resolution] = DataRef(proxy.data, resolution, proxy.val_fraction, proxy.seed).load()
        return loaded[resolution]

    images = len(data_at(run.config.objective.resolution).y_train)
    resources = run.config.resources
    with Runner(resources.address, bool(resources.debug)):  # one Ray instance for every finalist's training
        short, full = None, finalists
        if halves(finalists, epochs):
            brief = short_epochs(epochs)
            log(f"finalists: {len(finalists)} networks ({', '.join(f.name for f in finalists)}) trained with "
                f"nas-train's recipe for {brief:g} epochs, judged on the search's held-out split")
            results = [train(run, f, brief, images, log, SHORT_FOLDER) for f in finalists]
            short = judge(run, finalists, results, data_at, SHORT_FOLDER)
            full = continuing(finalists, short)
        log(f"finalists: {len(full)} networks ({', '.join(f.name for f in full)}) trained with nas-train's "
            f"recipe for {epochs:g} epochs, judged on the search's held-out split")
        results = [train(run, f, epochs, images, log, FOLDER) for f in full]
    table = judge(run, full, results, data_at).assign(full_length=True)
    if short is not None:
        table = pd.concat([table, short[~short["name"].isin(table["name"])].assign(full_length=False)],
                          ignore_index=True)
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
    with RunLock(config.out), live_report(Path(config.out)):  # the page reloads itself while they train
        return run_finalists(open_run(config.out, "--finalists"), stage.finalists, stage.epochs, train)
