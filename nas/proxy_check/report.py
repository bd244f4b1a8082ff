"""The figures of a proxy check from its rows: rank agreement with intervals, seed to seed, cost, a verdict,
and the scatter plot."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from nas.plotting import save_plot
from nas.proxy_check.rank_stats import bootstrap_interval, kendall_tau_b, spearman_rho, top_k_overlap


def _interval(statistic: Callable[..., float], x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    value = statistic(x, y)
    low, high = bootstrap_interval(statistic, x, y)
    return {"value": _finite(value), "interval90": [_finite(low), _finite(high)]}


def _finite(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def _ranked(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[Any]]:
    """The first proxy seed's rows and the reference's, by model, and the models both trained without failure."""
    proxy = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 1)].set_index("model")
    reference = rows[rows["budget"] == "reference"].set_index("model")
    both = proxy.index.intersection(reference.index)
    good = [m for m in both if proxy.loc[m, "status"] == "ok" and reference.loc[m, "status"] == "ok"]
    return proxy, reference, good


def summarize(rows: pd.DataFrame, repeats: int) -> dict[str, Any]:
    """The check's figures from its rows (one per model and budget): see the module docstring."""
    proxy, reference, good = _ranked(rows)
    figures: dict[str, Any] = {"models": int(rows["model"].nunique()), "ranked": len(good),
                               "left_out": int(rows["model"].nunique()) - len(good)}
    if len(good) >= 2:
        for what in ("accuracy", "reward"):
            x, y = proxy.loc[good, what].to_numpy(float), reference.loc[good, what].to_numpy(float)
            k = max(1, round(0.25 * len(good)))
            figures[what] = {"kendall_tau_b": _interval(kendall_tau_b, x, y),
                             "spearman_rho": _interval(spearman_rho, x, y),
                             "top_k": k, "top_k_overlap": round(top_k_overlap(x, y, k), 4)}
        figures.update(other_scores(proxy.loc[good], reference.loc[good, "accuracy"].to_numpy(float)))
    per_seed = _per_seed(rows, reference, repeats)
    if per_seed:
        figures.update(per_seed)
    if repeats >= 2:
        again = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 2)].set_index("model")
        pair = [m for m in proxy.index.intersection(again.index)
                if proxy.loc[m, "status"] == "ok" and again.loc[m, "status"] == "ok"]
        if len(pair) >= 2:
            x, y = proxy.loc[pair, "accuracy"].to_numpy(float), again.loc[pair, "accuracy"].to_numpy(float)
            figures["seed_to_seed"] = {"kendall_tau_b": _interval(kendall_tau_b, x, y),
                                       "mean_abs_accuracy_difference": round(float(np.mean(np.abs(x - y))), 4)}
    ok = rows[(rows["status"] == "ok") & (rows["source"] != "table")]  # a table's trainings cost nothing here
    proxy_seconds = ok[ok["budget"] == "proxy"]["seconds"].mean()
    reference_seconds = ok[ok["budget"] == "reference"]["seconds"].mean()
    if proxy_seconds > 0:
        figures["seconds"] = {"proxy_mean": round(float(proxy_seconds), 2)}
        if np.isfinite(reference_seconds):
            figures["seconds"].update(reference_mean=round(float(reference_seconds), 2),
                                      cost_ratio=round(float(reference_seconds / proxy_seconds), 2))
    figures["verdict"] = verdict(figures)
    return figures


def other_scores(proxy: pd.DataFrame, target: np.ndarray) -> dict[str, Any]:
    """Scores other than the proxy's held-out accuracy, ranked against the reference's accuracy: the proxy
    training's mean loss (lower ranks higher: Ru et al.'s sum of training losses, which needs no held-out
    split) and FLOPs alone (no training: the baseline any proxy has to beat)."""
    out: dict[str, Any] = {"flops_alone": {"kendall_tau_b": _interval(kendall_tau_b, proxy["flops"].to_numpy(float),
                                                                       target)}}
    loss = pd.to_numeric(proxy.get("train_loss", pd.Series(dtype=float)), errors="coerce").to_numpy(float)
    if len(loss) == len(target) and np.isfinite(loss).all():
        out["train_loss"] = {"kendall_tau_b": _interval(kendall_tau_b, -loss, target)}
    return out


def in_window(rows: pd.DataFrame, low: float, high: float) -> dict[str, Any]:
    """The proxy's scores ranked among the models whose FLOPs lie in ``low..high``: the networks a search with
    this target compares (its FLOPs window), where FLOPs alone separates little. Empty with fewer than 3."""
    proxy, reference, good = _ranked(rows)
    models = [m for m in good if low <= float(proxy.loc[m, "flops"]) <= high]
    if len(models) < 3:
        return {}
    target = reference.loc[models, "accuracy"].to_numpy(float)
    figures = {"models": len(models), "flops": [low, high],
               "accuracy": {"kendall_tau_b": _interval(kendall_tau_b, proxy.loc[models, "accuracy"].to_numpy(float),
                                                       target)}}
    figures.update(other_scores(proxy.loc[models], target))
    return {"in_window": figures}


def held_out_accuracy(rows: pd.DataFrame, candidates: list[Any]) -> dict[str, Any]:
    """With a reference table: the first proxy seed's tau against the table's held-out accuracy too (the
    reference itself is its test accuracy)."""
    proxy = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 1) & (rows["status"] == "ok")]
    known = {i: c.known.val_accuracy for i, c in enumerate(candidates) if c.known is not None}
    models = [m for m in proxy["model"] if m in known]
    if len(models) < 2:
        return {}
    x = proxy.set_index("model").loc[models, "accuracy"].to_numpy(float)
    y = np.array([known[m] for m in models])
    return {"held_out_accuracy": {"kendall_tau_b": _interval(kendall_tau_b, x, y)}}


def _per_seed(rows: pd.DataFrame, reference: pd.DataFrame, repeats: int) -> dict[str, Any]:
    """Tau of each proxy seed against the reference, and of the proxy averaged over the seeds.

    One proxy run is what a search uses, but its tau is itself noisy: the spread over seeds shows how much,
    and the averaged proxy shows what averaging seeds (one of the levers to steady a proxy) buys.
    """
    if repeats < 2:
        return {}
    accuracy: dict[int, pd.Series] = {}
    taus = []
    for repeat in range(1, repeats + 1):
        frame = rows[(rows["budget"] == "proxy") & (rows["repeat"] == repeat)].set_index("model")
        good = [m for m in frame.index.intersection(reference.index)
                if frame.loc[m, "status"] == "ok" and reference.loc[m, "status"] == "ok"]
        accuracy[repeat] = frame.loc[good, "accuracy"].astype(float)
        taus.append(_finite(kendall_tau_b(accuracy[repeat], reference.loc[good, "accuracy"])) if len(good) >= 2
                    else None)
    common = sorted(set.intersection(*(set(a.index) for a in accuracy.values())))
    out: dict[str, Any] = {"per_seed_kendall_tau_b": taus}
    if len(common) >= 2:
        averaged = np.mean([accuracy[r].loc[common].to_numpy() for r in accuracy], axis=0)
        target = reference.loc[common, "accuracy"].to_numpy(float)
        out["averaged_proxy"] = {"seeds": repeats, "kendall_tau_b": _interval(kendall_tau_b, averaged, target),
                                 "spearman_rho": _interval(spearman_rho, averaged, target)}
    return out


def verdict(figures: dict[str, Any]) -> str:
    """One plain line: how well one proxy run ranks, by Kendall's tau of accuracy (the mean over seeds where
    there are several, since one seed's tau is itself noisy) and the first seed's interval."""
    if "accuracy" not in figures:
        return f"too few models ranked ({figures['ranked']}) to judge the proxy"
    tau = figures["accuracy"]["kendall_tau_b"]
    value, (low, high) = tau["value"], tau["interval90"]
    if value is None:
        return "the proxy or the reference gave every model the same accuracy: no ranking to judge"
    seeds = [t for t in figures.get("per_seed_kendall_tau_b", []) if t is not None]
    if len(seeds) >= 2:
        value = float(np.mean(seeds))
        head = (f"tau {value:.2f} (by seed: {', '.join(f'{t:.2f}' for t in seeds)}; "
                f"seed 1's 90% interval [{low:.2f}, {high:.2f}])")
    else:
        head = f"tau {value:.2f} [{low:.2f}, {high:.2f}]"
    if value >= 0.5 and low is not None and low >= 0.5:
        text = "the proxy ranks these architectures well"
    elif value >= 0.5:
        text = "the proxy ranks these architectures well, but the interval is wide: check more models"
    elif value >= 0.3:
        text = "the proxy ranks these architectures roughly: more steps or repeats would help"
    else:
        text = "the proxy does not rank these architectures: a search on it learns mostly noise"
    seed = figures.get("seed_to_seed", {}).get("kendall_tau_b", {}).get("value")
    if seed is not None and seed < 0.5:
        text += f" (the proxy agrees with itself across seeds only at tau {seed:.2f})"
    averaged = figures.get("averaged_proxy", {}).get("kendall_tau_b", {}).get("value")
    if averaged is not None and averaged > value + 0.1:
        text += f"; averaging {figures['averaged_proxy']['seeds']} seeds ranks at tau {averaged:.2f}"
    return f"{head}: {text}"


def plot(rows: pd.DataFrame, figures: dict[str, Any], path: Path, title: str) -> None:
    """Proxy against reference accuracy, one point per model, the diagonal, each model's reference rank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    proxy = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 1) & (rows["status"] == "ok")].set_index("model")
    reference = rows[(rows["budget"] == "reference") & (rows["status"] == "ok")].set_index("model")
    models = proxy.index.intersection(reference.index)
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    x, y = proxy.loc[models, "accuracy"].to_numpy(float), reference.loc[models, "accuracy"].to_numpy(float)
    kinds = proxy.loc[models, "kind"].to_numpy()
    for kind, colour in (("sampled", "#4f6d7a"), ("from-run", "#d1495b"), ("reference", "#edae49")):
        mask = kinds == kind
        if mask.any():
            ax.scatter(x[mask], y[mask], s=40, color=colour, edgecolor="black", label=kind, zorder=3)
    ranks = (-y).argsort().argsort() + 1
    for xi, yi, rank in zip(x, y, ranks):
        ax.annotate(str(rank), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    top = max([0.0, *x, *y]) * 1.05 + 0.01
    ax.plot([0, top], [0, top], "--", color="gray", lw=1, label="diagonal")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("proxy accuracy (held out)")
    ax.set_ylabel("reference accuracy (held out); labels: reference rank")
    seed = figures.get("seed_to_seed", {}).get("kendall_tau_b", {}).get("value")
    subtitle = figures["verdict"].split(": ")[0] + (f"; seed-to-seed tau {seed:.2f}" if seed is not None else "")
    ax.set_title(f"{title}\nproxy vs reference accuracy: {subtitle}", fontsize=9)
    save_plot(fig, ax, path)
