"""Training a network: the budget (optimizer, steps, rungs) and the proxy's training loop."""
