"""The function every Ray Train worker runs: the plain training loop of nas/training/full.py on its rank.

Ray Train has started the worker, set up the process group (gloo on CPU, NCCL on GPUs) and chosen the device;
the data comes from Ray's object store, the checkpoint to continue from (if any) from the run directory, so
a worker group that Ray Train restarts after a failure continues from the last epoch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.training.recipe import TrainRecipe

from search_spaces.spec import load_spec


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Train on this worker's rank, reporting each epoch to Ray Train; returns rank 0's final accuracies (Ray
    Train hands rank 0's return value to the driver)."""
    import ray
    import ray.train
    import ray.train.torch
    import torch

    from nas.training.checkpoints import latest_checkpoint
    from nas.training.full import train_network

    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(max(1, int(config["threads"])))
    data = ray.get(config["data"])  # the driver's ImageSplits, test split included
    resume, _ = latest_checkpoint(Path(config["out"]))  # the driver has set aside unusable ones and said so
    return train_network(load_spec(json.loads(config["spec"])), data, TrainRecipe.from_dict(config["recipe"]),
                           config["out"], device=ray.train.torch.get_device(), rank=rank,
                           world_size=world_size, resume=resume,
                           on_epoch=lambda row: ray.train.report(row))
