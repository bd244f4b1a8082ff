"""nas-train: train a found (or scaled) network for real with Ray Train, and keep what it learnt."""
