"""Resource planning as a pure function: what each trial asks of Ray, and how many run at once; the CPUs a
local Ray instance is given."""
import os
import subprocess
import sys

import pytest

from nas.errors import UserInputError
from nas.engine.runner import plan_resources, trials_per_gpu


def test_on_cpu_trials_take_one_cpu_each_as_many_as_there_are_cpus():
    res = plan_resources({"CPU": 2.0})
    assert (res.cpus, res.gpus, res.concurrency) == (1.0, 0.0, 2)
    res = plan_resources({"CPU": 64.0})  # at most CPU_TRIALS_AT_ONCE workers, the CPUs shared among them
    assert (res.cpus, res.concurrency) == (4.0, 16)
    res = plan_resources({"CPU": 16.0}, concurrency=4)
    assert (res.cpus, res.gpus, res.concurrency) == (4.0, 0.0, 4)
    res = plan_resources({"CPU": 8.0}, cpus_per_trial=2)  # what the user gives wins: one trial of 2 CPUs
    assert (res.cpus, res.concurrency) == (2.0, 1)


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
    assert (res.gpus, res.concurrency, res.cpus) == (0.0, 16, 2.0)  # GPUs left unused on purpose: CPU trials


def test_more_than_the_cluster_has_is_a_user_error():
    with pytest.raises(UserInputError, match="--gpus-per-trial 2"):
        plan_resources({"CPU": 4.0, "GPU": 1.0}, gpus_per_trial=2)
    with pytest.raises(UserInputError, match="--cpus-per-trial 8"):
        plan_resources({"CPU": 4.0}, cpus_per_trial=8)


def test_a_trial_never_asks_more_than_one_node_has():
    two_small_nodes = [{"CPU": 1.0}, {"CPU": 1.0}]
    res = plan_resources({"CPU": 2.0}, nodes=two_small_nodes, concurrency=1)  # Ray would keep a 2-CPU trial
    assert (res.cpus, res.concurrency) == (1.0, 1)  # pending forever
    res = plan_resources({"CPU": 16.0}, nodes=[{"CPU": 8.0}, {"CPU": 8.0}], concurrency=2)
    assert (res.cpus, res.concurrency) == (8.0, 2)
    with pytest.raises(UserInputError, match=r"--cpus-per-trial 2: no node of the Ray cluster has 2 CPUs "
                                             r"\(the largest has 1\)"):
        plan_resources({"CPU": 2.0}, cpus_per_trial=2, nodes=two_small_nodes)
    with pytest.raises(UserInputError, match="--gpus-per-trial 2: no node of the Ray cluster has 2 GPUs"):
        plan_resources({"CPU": 8.0, "GPU": 2.0}, gpus_per_trial=2,
                       nodes=[{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}])
    # GPU trials go where the GPUs are: the CPUs of a CPU-only node do not count for them
    with pytest.raises(UserInputError, match="the largest with GPUs has 4"):
        plan_resources({"CPU": 68.0, "GPU": 1.0}, gpus_per_trial=1, cpus_per_trial=8,
                       nodes=[{"CPU": 4.0, "GPU": 1.0}, {"CPU": 64.0}])


def test_the_driver_computes_on_one_thread_while_trials_run_and_gets_its_threads_back():
    """A 2-thread controller update beside busy trials spins and waits (a PPO update took 8 s instead of 0.2)."""
    import torch
    from threadpoolctl import threadpool_info

    from nas.engine.runner import driver_on_one_thread

    torch.set_num_threads(2)
    before = [pool["num_threads"] for pool in threadpool_info()]
    with driver_on_one_thread():
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == 2 and [pool["num_threads"] for pool in threadpool_info()] == before


def test_an_address_of_another_cluster_is_refused_when_ray_already_runs_in_the_process(shared_ray):
    import ray

    from nas.engine.runner import start_ray
    from nas.errors import UserInputError

    import socket

    current = ray.get_runtime_context().gcs_address
    with socket.socket() as other:  # something answers there, but not this process's cluster
        other.bind(("127.0.0.1", 0))
        other.listen()
        address = f"127.0.0.1:{other.getsockname()[1]}"
        with pytest.raises(UserInputError, match=f"--address {address}: Ray already runs in this process, "
                                                 f"connected to {current}"):
            start_ray(address)
    assert start_ray(current) is False and start_ray("auto") is False and start_ray(None) is False
    assert ray.get_runtime_context().gcs_address == current  # still the same instance


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_command_pinned_to_one_cpu_starts_ray_with_one_cpu():
    """`taskset -c 0 nas-search ...` beside other work: the local Ray instance sees the CPUs the command may
    use, not the machine's, so it runs one trial (one torch thread) at a time instead of time-sharing a core."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); import ray; "
            "from nas.engine.runner import start_ray; start_ray(None); "
            "print(ray.cluster_resources()['CPU']); ray.shutdown()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "1.0"
