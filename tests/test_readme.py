"""The README's commands run as written: its walk from a folder of photos to an ONNX file, through the installed
console scripts, at small settings (flags appended, which argparse lets override), and its Python example."""
import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_finalists import check_final_stage

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL = {  # appended to each command: the same walk, seconds instead of minutes
    "nas-search": ["--trials", "2", "--steps", "2", "--batch-size", "8", "--concurrency", "1",
                   "--cpus-per-trial", "1", "--no-cache", "--finalists", "1", "--finalist-epochs", "1"],
    "nas-train": ["--epochs", "1", "--batch-size", "8", "--cpus-per-worker", "1"],
}


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def walk_commands() -> list[list[str]]:
    """The README's nas-* command lines (the set-up blocks are what CI runs itself)."""
    commands = []
    for block in code_blocks("bash"):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("nas-"):
                commands.append(shlex.split(line))
    return commands


def _photos(root: Path, classes: int = 3, per_class: int = 16) -> None:
    """A folder of small photos, one sub-folder per class, each class its own colour and stripes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8)
            image[:, :, c] += 150
            image[:: 2 + c] = 255
            Image.fromarray(image).save(root / f"class{c}" / f"{i}.png")


def test_the_walk_runs_as_written_through_the_installed_commands(tmp_path):
    commands = walk_commands()
    assert [c[0] for c in commands] == ["nas-search", "nas-train", "nas-export", "nas-scale", "nas-report"]
    _photos(tmp_path / "photos")
    bin_dir = Path(sys.executable).parent
    printed = {}
    for command in commands:
        script = bin_dir / command[0]
        assert script.is_file(), f"{command[0]} is not installed beside {sys.executable} (pip install -e .)"
        done = subprocess.run([str(script), *command[1:], *SMALL.get(command[0], [])], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{shlex.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        printed[command[0]] = done.stdout
    best = json.loads((tmp_path / "runs/mine/best_b0.json").read_text())
    assert best["num_classes"] == 3 and best["provenance"]["trial"] in (0, 1, None)
    # on a user's photos the search trains its finalists by default: the best candidate, B0 and the simple fixes
    finalists = check_final_stage(tmp_path / "runs/mine", 1, printed["nas-search"])
    assert finalists["simple_fix"].sum() >= 2 and len(finalists) == 2 + finalists["simple_fix"].sum()
    result = json.loads((tmp_path / "runs/mine-trained/result.json").read_text())
    assert result["resolution"] == 64 and result["num_classes"] == 3 and 0 <= result["val_accuracy"] <= 1
    assert (tmp_path / "mine.onnx").stat().st_size > 100_000
    scaled = json.loads((tmp_path / "runs/mine/mine-b3.json").read_text())
    assert scaled["resolution"] == 86  # B3's row of EfficientNet's table: 300 / 224 of the baseline's 64 px
    assert "mine" in (tmp_path / "runs/mine/report.html").read_text()


def test_the_python_example_prints_what_the_readme_says(monkeypatch):
    monkeypatch.chdir(README.parent)  # its paths are the checkout's
    (block,) = [b for b in code_blocks("python") if "build_model" in b]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "README.md", "exec"), {})
    expected = re.search(r"# (\{'params'.*\})", block).group(1)
    assert printed.getvalue().strip() == expected


@pytest.mark.parametrize("page", sorted((README.parent / "docs").glob("*.md")) + [README])
def test_every_relative_link_of_the_docs_resolves(page):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
