"""NAS toolkit: MnasNet-style search of a B0 backbone for a FLOPs budget, then EfficientNet scaling."""
__version__ = "0.1.0"
