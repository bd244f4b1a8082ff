"""Resource planning as a pure function: what each trial asks of Ray, and how many run at once."""
import pytest

from nas.errors import UserInputError
from nas.runner import plan_resources, trials_per_gpu


def test_on_cpu_one_trial_takes_every_cpu():
    res = plan_resources({"CPU": 2.0})
    assert (res.cpus, res.gpus, res.concurrency) == (2.0, 0.0, 1)
    res = plan_resources({"CPU": 16.0}, concurrency=4)
    assert (res.cpus, res.gpus, res.concurrency) == (4.0, 0.0, 4)


def test_small_proxies_share_a_gpu_by_default():
    assert trials_per_gpu(32, 64) == 4 and trials_per_gpu(64, 256) == 4
    assert trials_per_gpu(224, 128) == 1 and trials_per_gpu(64, 512) == 1
    res = plan_resources({"CPU": 32.0, "GPU": 8.0}, per_gpu=trials_per_gpu(32, 64))
    assert (res.gpus, res.concurrency, res.cpus) == (0.25, 32, 1.0)
    res = plan_resources({"CPU": 64.0, "GPU": 2.0}, per_gpu=trials_per_gpu(224, 128))
    assert (res.gpus, res.concurrency, res.cpus) == (1.0, 2, 4.0)


def test_what_the_user_gives_wins():
    res = plan_resources({"CPU": 32.0, "GPU": 8.0}, gpus_per_trial=0.5, per_gpu=4)
    assert (res.gpus, res.concurrency) == (0.5, 16)
    res = plan_resources({"CPU": 32.0, "GPU": 8.0}, gpus_per_trial=0.0, per_gpu=4)
    assert (res.gpus, res.concurrency, res.cpus) == (0.0, 1, 32.0)  # GPUs left unused on purpose: CPU trials


def test_more_than_the_cluster_has_is_a_user_error():
    with pytest.raises(UserInputError, match="--gpus-per-trial 2"):
        plan_resources({"CPU": 4.0, "GPU": 1.0}, gpus_per_trial=2)
    with pytest.raises(UserInputError, match="--cpus-per-trial 8"):
        plan_resources({"CPU": 4.0}, cpus_per_trial=8)
