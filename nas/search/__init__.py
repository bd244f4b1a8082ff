"""nas-search: the configuration, the reward, the controller as a Tune Searcher, the run directory, the driver."""
