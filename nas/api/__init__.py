"""The toolkit from Python: search, train, export and scale as functions (docs/python.md).

They take what the commands' flags take (as keyword arguments, named as the flags are, ``--target-flops``
becoming ``target_flops``) and return result objects. Data is anything ``--data`` takes (a string), numpy
arrays ``(x, y)`` or a dict with ``x``, ``y`` and optionally ``x_test``, ``y_test`` (uint8, N x H x W x 3), or a
``torch.utils.data.Dataset`` of (image, label) pairs; arrays and datasets are written once as an .npz in the run
directory, so a run can be resumed and read back like any other. Bad input raises
``nas.errors.UserInputError`` (a ValueError) with the same one-line message the commands print.

A call leaves its caller alone: it prints nothing (progress and warnings go to the ``nas`` logger; ``with
nas.api.console_output():`` shows them as the commands do), puts back the signal handlers it found, sets no
environment variable for longer than its Ray instance runs, and never exits the caller's process.
"""
from nas.api.networks import export, scale, scale_family
from nas.api.results import ExportResult, SearchResult, TrainResult
from nas.api.searching import search, search_config, search_from_config, train_finalists
from nas.api.training import train, train_from_settings
from nas.console import console_output

__all__ = ["search", "train", "export", "scale", "scale_family", "SearchResult", "TrainResult", "ExportResult",
           "console_output", "search_config", "search_from_config", "train_finalists", "train_from_settings"]
