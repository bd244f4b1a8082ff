"""Measurements, run by hand through one entry point: ``python -m benchmarks`` (see __main__.py)."""
