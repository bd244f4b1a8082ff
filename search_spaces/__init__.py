"""What can be built: the spec format, categorical spaces, the MnasNet space, and the reference networks."""
from pathlib import Path

REFERENCES = Path(__file__).resolve().parent / "references"  # the shipped reference specs (*.json)
SPACES = Path(__file__).resolve().parent / "spaces"  # the shipped space files (*.json): nas-search --space NAME
