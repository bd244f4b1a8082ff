"""What an installed copy holds: the wheel built from this checkout carries the type marker, the data files and
``python -m nas``."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_py_typed_the_data_files_and_the_module_entry(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("nas_toolkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("nas", "controllers", "search_spaces"):  # PEP 561: type checkers read the packages' hints
        assert f"{package}/py.typed" in names, package
    assert "nas/__main__.py" in names and "controllers/optuna_tpe.py" in names
    assert "nas/search/proxy_evidence.csv" in names
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "search_spaces" / "references").glob("*.json")}
    assert shipped and shipped <= names
