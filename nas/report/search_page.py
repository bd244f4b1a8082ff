"""A search's report.html: header, the best network beside EfficientNet-B0, the reward's progress, accuracy
against cost with the Pareto front, every candidate in a table, and what the controller learned.

Built from the run directory's own files (search.json, trials.csv, best_b0.json), so it can be rewritten at
any time: by the search as trials finish, or by ``nas-report`` after the fact.
"""
from __future__ import annotations

import json
import math
import time
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from nas.console import describe_reward
from nas.report.diagram import network_svg
from nas.report.page import facts, section, table, write_page
from nas.report.svg import Chart, Series
from nas.console import human_duration
from nas.network.counting import profile
from nas.plotting import pareto_front
from search_spaces import REFERENCES
from search_spaces.mnasnet import MnasNetSpace, space_from_dict
from search_spaces.spec import load_spec

TABLE_COLUMNS = ["trial", "status", "source", "summary", "resolution", "width_fit", "flops", "params", "latency_ms",
                 "accuracy", "reward", "steps", "seconds", "reason"]


def read_trials(path: Path) -> pd.DataFrame:
    """trials.csv as a DataFrame, its choices as tuples (empty when there is none yet)."""
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=TABLE_COLUMNS + ["choices"])
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    frame["choices"] = frame["choices"].map(lambda text: tuple(json.loads(text)))
    return frame


def _status_word(run_dir: Path, frame: pd.DataFrame, trials: int, state: str | None) -> str:
    evaluated = int((frame["status"] != "screened").sum()) if len(frame) else 0
    state = state or ("finished" if evaluated >= trials else "interrupted")
    if state == "interrupted":
        return f"interrupted: continue with nas-search --resume --out {run_dir}"
    return state


def _eta(frame: pd.DataFrame, trials: int, concurrency: int) -> str:
    evaluated = frame[frame["status"] != "screened"]
    if evaluated.empty or len(evaluated) >= trials:
        return "–"
    per_trial = float(pd.to_numeric(evaluated["seconds"], errors="coerce").fillna(0).mean())
    return human_duration(per_trial * (trials - len(evaluated)) / max(1, concurrency))


def _elapsed(started: str) -> str:
    try:
        return human_duration(time.time() - time.mktime(time.strptime(started[:19], "%Y-%m-%dT%H:%M:%S")))
    except (ValueError, TypeError):
        return "–"


def header(run_dir: Path, config: dict[str, Any], space: MnasNetSpace, started: str, frame: pd.DataFrame,
           state: str | None) -> str:
    """Title and the run's facts: target, data, controller, budget, progress, files."""
    trials = int(config["trials"])
    evaluated = int((frame["status"] != "screened").sum()) if len(frame) else 0
    screened = int((frame["status"] == "screened").sum()) if len(frame) else 0
    seconds = float(pd.to_numeric(frame.get("seconds", pd.Series(dtype=float)), errors="coerce").fillna(0).sum())
    target = (f"{config['target_latency_ms']:g} ms predicted latency" if config.get("target_latency_ms")
              else f"{config['target_flops'] / 1e6:g}M FLOPs")
    steps = f"{config['steps']} steps" if config.get("steps") else f"{config.get('epochs')} epochs"
    word = _status_word(run_dir, frame, trials, state)
    reward = describe_reward(config["reward"], config["w"])
    items = [("target", f"{target} at {config['resolution']} px, {reward}"),
             ("data", f"{config['data']} (proxy at {config['proxy_resolution']} px)"),
             ("space", _describe_space(space)),
             ("controller", f"{config['controller']}, seed {config['seed']}, scheduler {config.get('scheduler')}"),
             ("proxy budget", f"{steps}, batch {config['batch_size']}, {config['optimizer']}"),
             ("progress", f"{evaluated} of {trials} candidates evaluated, {screened} screened out; "
                          f"{human_duration(seconds)} of trial time; "
                          f"ETA {_eta(frame, trials, config.get('concurrency') or 1)}"),
             ("status", word), ("started", started or "–"),
             ("elapsed", _elapsed(started) if word == "running" else "–"),
             ("files", f"{run_dir.resolve()}: trials.csv, best_b0.json, pareto.png, search.json, space.json"),
             ("page written", time.strftime("%Y-%m-%d %H:%M:%S"))]
    css = word if word in ("running", "finished") else "interrupted"
    return (f'<h1>nas-search: {escape(run_dir.name)} <span class="status-{css}">({escape(word)})</span></h1>'
            + facts(items))


def networks(run_dir: Path, config: dict[str, Any]) -> str:
    """The best network drawn, with EfficientNet-B0 beneath it for comparison."""
    resolution = int(config["resolution"])
    reference = load_spec(Path(REFERENCES) / "efficientnet_b0.json")
    best_path = run_dir / "best_b0.json"
    drawings = []
    if best_path.is_file():
        best = load_spec(best_path)
        metrics = best.metrics
        latency = (f", predicted latency {metrics['predicted_latency_ms']:.2f} ms"
                   if metrics.get("predicted_latency_ms") else "")
        trial = best.provenance.get("trial")
        which = f"trial {trial}" if trial is not None else best.provenance.get("finalists", {}).get("winner", "")
        drawings.append(network_svg(best, resolution, f"best found ({which}): "
                                    f"{metrics.get('flops', 0) / 1e6:.1f}M FLOPs, "
                                    f"{metrics.get('params', 0) / 1e6:.2f}M params{latency}, "
                                    f"proxy accuracy {metrics.get('proxy_accuracy', 0):.3f}, "
                                    f"reward {metrics.get('reward', 0):.4f}{_finalists_text(best.provenance)}"))
        reference = reference.replace(num_classes=best.num_classes)
    else:
        drawings.append('<p class="note">no candidate has finished yet.</p>')

    counted = profile(reference, resolution, method="analytic")
    drawings.append(network_svg(reference, resolution, f"EfficientNet-B0 for comparison: {counted['flops'] / 1e6:.1f}M "
                                f"FLOPs, {counted['params'] / 1e6:.2f}M params"))
    return section("The best network", *(f'<div class="scroll">{d}</div>' for d in drawings),
                   note="hover a box for its FLOPs and params; sizes are the feature maps after each part")


def _title(row: pd.Series, cost: str) -> str:
    value = f"{row['flops'] / 1e6:.1f}M FLOPs" if cost == "flops" else f"{float(row['latency_ms']):.2f} ms"
    return (f"trial {row['trial']} ({row['status']}{', cached' if row.get('source') == 'cache' else ''}): "
            f"{row['summary']} | {value}, acc {float(row['accuracy']):.3f}, reward {float(row['reward']):.4f}")


def progress_charts(frame: pd.DataFrame) -> str:
    """Best reward so far against candidates and against trial time, every evaluated candidate a dot."""
    evaluated = frame[frame["status"] != "screened"].reset_index(drop=True)
    if evaluated.empty:
        return section("Best reward", '<p class="note">no candidate has finished yet.</p>')
    index = list(range(1, len(evaluated) + 1))
    elapsed = pd.to_numeric(evaluated["seconds"], errors="coerce").fillna(0).cumsum().div(60).tolist()
    rewards = evaluated["reward"].astype(float)
    ok_rewards = rewards.where(evaluated["status"] == "ok", -math.inf)
    best = ok_rewards.cummax().replace(-math.inf, math.nan).tolist()
    charts = []
    for xs, label in ((index, "candidates evaluated"), (elapsed, "trial time (minutes, summed over trials)")):
        chart = Chart("best reward so far", label, "reward")
        for status in ("ok", "stopped", "cached", "failed"):
            if status == "cached":
                mask = evaluated["source"] == "cache"
            else:
                mask = (evaluated["status"] == status) & (evaluated["source"] != "cache")
            if mask.any():
                titles = [_title(r, "flops") for _, r in evaluated[mask].iterrows()]
                chart.series.append(Series(status, [x for x, m in zip(xs, mask) if m], rewards[mask].tolist(),
                                           kind=status, titles=titles))
        chart.series.append(Series("best so far", xs, best, kind="best", line=True, step=True))
        charts.append(chart.svg())
    return section("Best reward", f'<div class="charts">{"".join(charts)}</div>',
                   note="each dot a candidate (hover for it); stopped = ended early by ASHA at a rung; "
                        "screened candidates were never trained and are not drawn")


def pareto_chart(frame: pd.DataFrame, config: dict[str, Any]) -> str:
    """Accuracy against FLOPs (or predicted latency) with the target, the window and the Pareto front."""
    by_latency = bool(config.get("target_latency_ms"))
    cost = "latency_ms" if by_latency else "flops"
    target = float(config["target_latency_ms"] if by_latency else config["target_flops"])
    evaluated = frame[frame["status"].isin(["ok", "stopped"])].copy()
    evaluated[cost] = pd.to_numeric(evaluated[cost], errors="coerce")
    evaluated = evaluated[evaluated[cost].notna()]
    chart = Chart("accuracy against " + ("latency" if by_latency else "FLOPs"),
                  "predicted latency (ms)" if by_latency else f"FLOPs at {config['resolution']} px",
                  "proxy accuracy", vlines=[(target, "target")])
    window = config.get("window")
    if window and math.isfinite(float(window[1])):
        chart.band = (float(window[0]) * target, float(window[1]) * target)
    for status in ("stopped", "ok"):
        part = evaluated[evaluated["status"] == status]
        if not part.empty:
            chart.series.append(Series("stopped early" if status == "stopped" else "trained", part[cost].tolist(),
                                       part["accuracy"].astype(float).tolist(), kind=status,
                                       titles=[_title(r, cost) for _, r in part.iterrows()]))
    ok = evaluated[evaluated["status"] == "ok"].reset_index(drop=True)
    if not ok.empty:
        front = sorted(pareto_front(zip(ok[cost], ok["accuracy"].astype(float))), key=lambda i: ok[cost][i])
        chart.series.append(Series("Pareto front", [ok[cost][i] for i in front],
                                   [float(ok["accuracy"][i]) for i in front], kind="front", line=True))
        chart.series.append(Series("", [ok[cost][i] for i in front], [float(ok["accuracy"][i]) for i in front],
                                   kind="front", titles=[_title(ok.iloc[i], cost) for i in front], radius=4))
    return section("Accuracy against " + ("latency" if by_latency else "FLOPs"), chart.svg(),
                   note="shaded: the pre-screen's window (candidates outside it are screened, never trained)")


def candidates_table(frame: pd.DataFrame) -> str:
    """Every candidate, sortable and filterable; the best row marked."""
    rows = frame.to_dict("records")
    ok = frame[frame["status"] == "ok"]
    best = int(ok.sort_values(["reward", "trial"], ascending=[False, True]).iloc[0]["trial"]) if len(ok) else None
    for row in rows:
        row["row_class"] = "best" if row["trial"] == best else row["status"]
        for column in ("flops", "params", "steps", "trial"):
            if isinstance(row.get(column), float) and math.isfinite(row[column]):
                row[column] = int(row[column])
    columns = [c for c in TABLE_COLUMNS if c in frame.columns and frame[c].astype(str).str.strip().ne("").any()
               and not frame[c].isna().all()]  # a column empty for every candidate (latency, reason) left out
    return section(f"All candidates ({len(rows)})", table(rows, columns, "candidates", row_class="row_class",
                                                          decimals={"seconds": 1, "latency_ms": 2}),
                   note="click a header to sort; the best candidate's row is red")


def _describe_space(space: MnasNetSpace) -> str:
    return space.overview()


def controller_learned(frame: pd.DataFrame, space: MnasNetSpace) -> str:
    """For each decision, how often each option was proposed in the first and the second half of the run."""
    if len(frame) < 2:
        return section("What the controller learned", '<p class="note">too few candidates yet.</p>')
    choices = [list(c) for c in frame.sort_values("trial")["choices"]]
    half = len(choices) // 2
    early, late = choices[:half], choices[half:]
    lines = []
    for index, (name, options) in enumerate(space.decisions):
        cells = []
        for option_index, option in enumerate(options):
            share_early = sum(c[index] == option_index for c in early) / max(1, len(early))
            share_late = sum(c[index] == option_index for c in late) / max(1, len(late))
            shade = f"rgba(31,119,180,{share_late * 0.8:.2f})"
            cells.append(f'<td style="background:{shade}" title="{escape(name)} = {escape(str(option))}: '
                         f'{share_early:.0%} of the first {len(early)}, {share_late:.0%} of the last {len(late)}">'
                         f'{escape(str(option))}: {share_early:.0%} → {share_late:.0%}</td>')
        lines.append(f'<tr><td class="text">{escape(name)}</td>{"".join(cells)}</tr>')
    body = f'<div class="scroll"><table>{"".join(lines)}</table></div>'
    return section("What the controller learned", body,
                   note=f"share of proposals (screened included) taking each option, first {len(early)} → last "
                        f"{len(late)}; the darker a cell, the more the late proposals chose it")


def write_search_report(run_dir: str | Path, state: str | None = None) -> Path:
    """(Re)write ``run_dir/report.html`` from the run's files; ``state`` (running, finished, interrupted)
    overrides the status read from them. Returns the page's path."""
    run_dir = Path(run_dir)
    saved = json.loads((run_dir / "search.json").read_text())
    config = saved["config"]
    space = space_from_dict(config.get("space"))  # the run's own (a run from before: MnasNet's)
    frame = read_trials(run_dir / "trials.csv")
    sections = [header(run_dir, config, space, saved.get("started", ""), frame, state), networks(run_dir, config)]
    if len(frame):
        sections += [progress_charts(frame), pareto_chart(frame, config), candidates_table(frame),
                     controller_learned(frame, space)]
    return write_page(run_dir, f"nas-search {run_dir.name}", sections, live=state == "running")


def _finalists_text(provenance: dict[str, Any]) -> str:
    """The finalists' verdict (nas-search --finalists) for the best network's caption; empty without one."""
    judged = provenance.get("finalists")
    if not judged:
        return ""
    low, high = judged["interval95"]
    noise = "beyond the noise" if judged["beyond_noise"] else "within the noise"
    text = (f"; the winner of {len(judged['compared'])} finalists trained for {judged['epochs']:g} epochs: held-out "
            f"{judged['held_out_accuracy']:.3f}, {judged['margin_over_b0'] * 100:+.1f} points over the space's "
            f"nearest EfficientNet-B0 (95% interval {low * 100:+.1f} to {high * 100:+.1f}, {noise})")
    if judged.get("best_fix") and judged["best_fix"] != judged["winner"]:
        low, high = judged["fix_interval95"]
        noise = "beyond the noise" if judged["fix_beyond_noise"] else "within the noise"
        text += (f", {judged['margin_over_best_fix'] * 100:+.1f} points over the best simple fix, "
                 f"{judged['best_fix']} (95% interval {low * 100:+.1f} to {high * 100:+.1f}, {noise})")
    return text
