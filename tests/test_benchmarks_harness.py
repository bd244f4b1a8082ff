"""benchmarks/__main__.py: one entry point that lists every benchmark and stamps what a run writes."""
import csv
from pathlib import Path

import pytest

from benchmarks import __main__ as harness

HELPERS = {"neighbours", "processes", "proxy_scores"}  # shared by other benchmarks, not run on their own


def test_every_benchmark_is_listed_under_a_question():
    scripts = {p.stem for p in (harness.ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_")}
    listed = [name for names in harness.GROUPS.values() for name in names]
    assert sorted(listed) == sorted(scripts - HELPERS) and len(set(listed)) == len(listed)
    assert all(harness.summary(name) for name in listed)  # each says what it measures


def test_a_runs_new_rows_and_files_are_stamped_and_earlier_rows_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    monkeypatch.setattr(harness, "STAMPS", tmp_path / "stamps.csv")
    monkeypatch.setattr(harness, "ROOT", tmp_path)
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    (tmp_path / "untouched.txt").write_text("x")
    before = harness._snapshot()
    with table.open("a") as handle:
        handle.write("3,4\n")
    (tmp_path / "new.json").write_text("{}")
    written = harness.stamp_results(before, "flops_speed", ["--resolution", "32"])
    assert [p.name for p in written] == ["new.json", "table.csv"]
    rows = list(csv.DictReader(table.open()))
    assert rows[0]["commit"] == "" and rows[1]["commit"] and rows[1]["toolkit"] and rows[1]["machine"]
    stamps = list(csv.DictReader((tmp_path / "stamps.csv").open()))
    assert [s["file"] for s in stamps] == ["new.json", "table.csv"]
    assert stamps[0]["benchmark"] == "flops_speed" and stamps[0]["arguments"] == "--resolution 32"


def test_an_unknown_benchmark_is_one_line_and_exit_2(capsys):
    assert harness.main(["nope"]) == 2
    assert capsys.readouterr().err.strip() == "python -m benchmarks: no benchmark 'nope'; python -m benchmarks lists them"
    assert harness.main([]) == 0 and "flops_speed" in capsys.readouterr().out


def test_benchmarks_import_each_other_as_the_benchmarks_package():
    """A script run by the harness has the repository's root on its path, not benchmarks/: a helper beside it
    is imported as ``benchmarks.NAME`` (a bare ``from neighbours import ...`` failed under the harness)."""
    import ast

    scripts = {p.stem for p in (harness.ROOT / "benchmarks").glob("*.py")}
    bare = []
    for path in (harness.ROOT / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            bare += [f"{path.name}: {name}" for name in names if name.split(".")[0] in scripts]
    assert bare == []
