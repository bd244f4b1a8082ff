"""Step 1 of EfficientNet scaling: α, β, γ found by a grid search on the proxy (nas-scale --grid-search)."""
