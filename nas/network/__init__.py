"""The network: blocks, the builder of a spec as a torch module, FLOPs and params, EfficientNet's scaling rules."""
