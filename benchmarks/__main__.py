"""One entry point for the benchmarks: ``python -m benchmarks`` lists them by the question they answer;
``python -m benchmarks NAME [ARGS...]`` runs ``benchmarks/NAME.py`` with ARGS, from the repository's root.

Every results file a run writes or changes under ``benchmarks/results/`` is stamped: a row in
``benchmarks/results/stamps.csv`` (the file, the benchmark and its arguments, the toolkit's version, the
commit, the machine, when), and in a CSV file each new row gets the same three columns (``toolkit``,
``commit``, ``machine``). Figures are read from these files, not from code comments.
"""
from __future__ import annotations

import ast
import csv
import os
import platform
import runpy
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STAMPS = RESULTS / "stamps.csv"
STAMP_COLUMNS = ("toolkit", "commit", "machine")

# the question each benchmark answers; a script in none of them (a shared helper) is not listed
GROUPS = {
    "Does the search pay on real images?": ["real_data", "run_summary", "winner_recheck", "search_quality",
                                            "window_levels"],
    "Does the proxy rank networks as real training does?": ["ground_truth", "proxy_truth", "proxy_noise",
                                                            "zero_cost", "proxy_cost"],
    "Which controller finds good networks?": ["controller_landscapes", "tabular_benchmark"],
    "How fast, and beside other work?": ["flops_speed", "trial_load", "search_load", "train_load", "cache_reuse",
                                         "worker_memory", "report_page"],
    "Training (nas-train)": ["train_recipe", "train_epoch", "train_throughput", "train_workers"],
    "Latency and export": ["latency_predictor", "export_latency"],
    "Do our networks match timm's?": ["timm_parity"],
    "On a GPU machine": ["gpu_check"],
}


def summary(name: str) -> str:
    """The first line of a benchmark's docstring."""
    doc = ast.get_docstring(ast.parse((ROOT / "benchmarks" / f"{name}.py").read_text())) or ""
    return doc.splitlines()[0] if doc else ""


def listing() -> str:
    lines = ["python -m benchmarks NAME [ARGS...]   (NAME --help: its options)", ""]
    for question, names in GROUPS.items():
        lines.append(question)
        lines += [f"  {name:<22} {summary(name)}" for name in names]
        lines.append("")
    return "\n".join(lines)


def stamp() -> dict[str, str]:
    """The toolkit's version, the commit (``+dirty`` with uncommitted changes) and the machine."""
    from nas import __version__

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = f"{platform.node()} {platform.machine()} {cpus} CPUs"
    return {"toolkit": __version__, "commit": commit, "machine": machine}


def _csv_rows(path: Path) -> int:
    if path.suffix != ".csv":
        return 0
    with path.open(newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def _snapshot() -> dict[Path, tuple[float, int, int]]:
    """Each results file: (modified time, size, CSV data rows)."""
    return {p: (p.stat().st_mtime, p.stat().st_size, _csv_rows(p))
            for p in RESULTS.rglob("*") if p.is_file() and p != STAMPS}


def stamp_results(before: dict[Path, tuple[float, int, int]], name: str, args: list[str]) -> list[Path]:
    """Stamp the results files written since ``before``: a row each in stamps.csv; the CSV rows added get the
    stamp columns (a file appended to keeps its earlier rows as they were). The files stamped."""
    values = stamp()
    written = sorted(p for p, seen in _snapshot().items() if p not in before or before[p][:2] != seen[:2])
    for path in written:
        if path.suffix == ".csv":
            _stamp_csv_rows(path, values, old_rows=before[path][2] if path in before else 0)
    if written:
        new = not STAMPS.is_file()
        with STAMPS.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["file", "benchmark", "arguments", *STAMP_COLUMNS, "when"])
            for path in written:
                writer.writerow([path.relative_to(ROOT).as_posix(), name, " ".join(args),
                                 *(values[c] for c in STAMP_COLUMNS), time.strftime("%Y-%m-%dT%H:%M:%S%z")])
    return written


def _stamp_csv_rows(path: Path, values: dict[str, str], old_rows: int) -> None:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    missing = [c for c in STAMP_COLUMNS if c not in header]
    header = header + missing
    index = {c: header.index(c) for c in STAMP_COLUMNS}
    for number, row in enumerate(body):
        row += [""] * (len(header) - len(row))
        if number >= old_rows:
            for column in STAMP_COLUMNS:
                if not row[index[column]]:
                    row[index[column]] = values[column]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *body])


def main(argv: list[str]) -> int:
    names = [name for names in GROUPS.values() for name in names]
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(listing())
        return 0
    name, args = argv[0], argv[1:]
    script = ROOT / "benchmarks" / f"{name}.py"
    if name not in names or not script.is_file():
        print(f"python -m benchmarks: no benchmark {name!r}; python -m benchmarks lists them", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    RESULTS.mkdir(parents=True, exist_ok=True)
    before = _snapshot()
    sys.argv = [str(script), *args]
    code = 0
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        written = stamp_results(before, name, args)
        if written:
            print(f"stamped {len(written)} results file(s) in {STAMPS.relative_to(ROOT)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
