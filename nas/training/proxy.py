"""Brief proxy training of one candidate: the data goes to the device once, augmentation runs there.

AdamW (or SGD with Nesterov momentum), linear warm-up then cosine decay, label smoothing and weight decay (not
on BatchNorm or biases). On CUDA: bf16 autocast and channels_last. On CPU: float32 and channels_last (2 to 4
times faster than NCHW for these nets at 32-64 px); the thread count is the caller's. A NaN or infinite loss
stops the candidate, which is returned as failed with the reason.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nas.data.datasets import ProxyData
from nas.network.builder import build_model
from nas.training.budget import TrainBudget
from nas.training.recipe import param_groups
from search_spaces.spec import ArchSpec


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor of ``array``, sharing its memory when it is writable. Ray hands a trial the proxy data as
    read-only arrays from its object store; torch warns about those on every trial, so they are copied."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


class DeviceData:
    """Uint8 NHWC images on the device, with random crop + flip and normalisation as tensor ops."""

    def __init__(self, x: np.ndarray, y: np.ndarray, device: torch.device, mean: torch.Tensor,
                 std: torch.Tensor, pad: int) -> None:
        self.x = _as_tensor(x).to(device)
        self.y = _as_tensor(np.asarray(y, np.int64)).to(device)
        self.device, self.mean, self.std, self.pad = device, mean, std, pad

    def __len__(self) -> int:
        return len(self.y)

    def _to_input(self, images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float().div_(255).sub_(self.mean).div_(self.std)
        return x.to(dtype).contiguous(memory_format=torch.channels_last)

    def augmented_batch(self, index: torch.Tensor, generator: torch.Generator,
                        dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crop (reflect-padded by ``pad``) and horizontal flip, per sample."""
        images = self.x[index]
        n, h, w, _ = images.shape
        if self.pad:
            padded = F.pad(images.permute(0, 3, 1, 2).float(), (self.pad,) * 4, mode="reflect")
            oy = torch.randint(0, 2 * self.pad + 1, (n, 1, 1), generator=generator, device=self.device)
            ox = torch.randint(0, 2 * self.pad + 1, (n, 1, 1), generator=generator, device=self.device)
            rows = (torch.arange(h, device=self.device).view(1, h, 1) + oy).expand(n, h, w)
            cols = (torch.arange(w, device=self.device).view(1, 1, w) + ox).expand(n, h, w)
            batch = torch.arange(n, device=self.device).view(n, 1, 1).expand(n, h, w)
            images = padded.permute(0, 2, 3, 1)[batch, rows, cols]
        flip = torch.rand(n, generator=generator, device=self.device) < 0.5
        images = torch.where(flip.view(n, 1, 1, 1), images.flip(2), images)
        return self._to_input(images, dtype), self.y[index]

    def batches(self, batch_size: int, dtype: torch.dtype):
        for start in range(0, len(self), batch_size):
            yield self._to_input(self.x[start:start + batch_size], dtype), self.y[start:start + batch_size]


def init_for_short_training(model: torch.nn.Module) -> None:
    """Re-initialise two layers so that a brief proxy run learns from its first steps.

    The last BatchNorm of every residual layer starts at zero (each residual layer starts as the identity,
    Goyal et al. 2017), and the classifier starts at normal(0, 0.01): TF's uniform(+-1/sqrt(classes)) gives
    large initial logits when there are few classes. Measured on the synthetic proxy (B0, 200 steps): 11%
    held-out accuracy (chance) with the reference init, 48% with this one.
    """
    from nas.network.blocks import MBConv, RegularConv

    for module in model.modules():
        if isinstance(module, MBConv) and module.residual:
            torch.nn.init.zeros_(module.project[1].weight)
        elif isinstance(module, RegularConv) and module.residual:
            torch.nn.init.zeros_(module.conv[1].weight)
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, torch.nn.Linear):
        torch.nn.init.normal_(classifier.weight, 0.0, 0.01)
        torch.nn.init.zeros_(classifier.bias)


def make_optimizer(model: torch.nn.Module, budget: TrainBudget) -> torch.optim.Optimizer:
    """The budget's optimizer over ``model``: SGD with Nesterov momentum, or AdamW (decoupled decay)."""
    groups = param_groups(model, budget.weight_decay)
    if budget.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=budget.lr)
    return torch.optim.SGD(groups, lr=budget.lr, momentum=budget.momentum, nesterov=True)


def _lr_at(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    warmup = max(1, int(total * warmup_fraction))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def recalibrate_batchnorm(model: torch.nn.Module, data: DeviceData, batch_size: int, batches: int,
                          autocast: bool) -> None:
    """Re-estimate BatchNorm running statistics as exact averages over a few training batches.

    With TF's momentum (0.01 in PyTorch's convention) a brief proxy run leaves the running statistics
    mostly at their initial values; evaluating with them would measure the schedule, not the network.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad(), torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=autocast):
        for i, (x, _) in enumerate(data.batches(batch_size, torch.float32)):
            if i >= batches:
                break
            model(x)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum


def top1_accuracy(model: torch.nn.Module, data: DeviceData, batch_size: int, autocast: bool) -> float:
    """Top-1 accuracy on ``data`` in eval mode."""
    model.eval()
    correct = 0
    dtype = torch.float32
    with torch.no_grad(), torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=autocast):
        for x, y in data.batches(batch_size, dtype):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / max(1, len(data))


RungReport = Callable[[int, float], None]


def train_candidate(spec: ArchSpec, data: ProxyData, budget: TrainBudget | None = None,
                    device: str | torch.device | None = None, seed: int = 0, rungs: Sequence[int] = (),
                    report: RungReport | None = None) -> dict[str, Any]:
    """Train ``spec`` briefly on ``data`` and return its held-out accuracy.

    Returns ``{"status": "ok"|"failed", "accuracy", "final_loss", "train_seconds", "images_per_second",
    "steps", "device", "reason"}``; a failed candidate has accuracy 0 and a reason. With ``rungs`` and
    ``report``, the held-out accuracy is also measured at those steps and passed to ``report(step, accuracy)``.
    """
    torch.manual_seed(seed)
    model = build_model(spec, num_classes=data.num_classes)
    init_for_short_training(model)
    return train_model(model, data, budget, device, seed, rungs, report)


def _accuracy_at_rung(model: torch.nn.Module, train: DeviceData, val: DeviceData, budget: TrainBudget,
                      autocast: bool) -> float:
    """Held-out accuracy in the middle of training, leaving the rest of the run exactly as without it:
    the random streams (drop connect and dropout draw from torch's global generator while BatchNorm is
    re-estimated) are restored, and training-mode BatchNorm ignores the re-estimated running statistics."""
    devices = [train.device] if train.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        recalibrate_batchnorm(model, train, budget.eval_batch_size, 4, autocast)
        accuracy = top1_accuracy(model, val, budget.eval_batch_size, autocast)
    model.train()
    return accuracy


def compiled_forward(model: torch.nn.Module, mode: str | None) -> tuple[Any, str | None]:
    """``torch.compile(model, mode=mode)`` for the training steps, or the model itself when ``mode`` is None
    or compiling is not possible here (returned with the reason)."""
    if not mode:
        return model, None
    try:
        return torch.compile(model, mode=mode), mode
    except Exception as exc:  # noqa: BLE001 - eager is always a correct fallback
        return model, f"eager ({type(exc).__name__} from torch.compile)"


def train_model(model: torch.nn.Module, data: ProxyData, budget: TrainBudget | None = None,
                device: str | torch.device | None = None, seed: int = 0, rungs: Sequence[int] = (),
                report: RungReport | None = None, compile_mode: str | None = None) -> dict[str, Any]:
    """The proxy training loop for any classifier taking NCHW input (used for ours and, in benchmarks, timm's).

    ``rungs``/``report``: see :func:`train_candidate`; a rung at or past the last step is ignored.
    ``compile_mode`` (e.g. ``"reduce-overhead"``, CUDA graphs): the training forward runs through
    ``torch.compile``; if compiling fails (a CPU without a C++ toolchain, an unsupported op) the run goes on
    eagerly and ``result["compiled"]`` says so. Evaluation is always eager.
    """
    budget = budget or TrainBudget()
    device = torch.device(device or default_device())
    on_cuda = device.type == "cuda"
    generator = torch.Generator(device=device).manual_seed(seed)
    model = model.to(device).to(memory_format=torch.channels_last)

    mean = torch.from_numpy(data.x_train.reshape(-1, 3).mean(0) / 255).float().to(device).view(1, 3, 1, 1)
    std = torch.from_numpy(data.x_train.reshape(-1, 3).std(0) / 255 + 1e-3).float().to(device).view(1, 3, 1, 1)
    pad = max(1, data.resolution // 8)
    train = DeviceData(data.x_train, data.y_train, device, mean, std, pad)
    val = DeviceData(data.x_val, data.y_val, device, mean, std, 0)

    total = budget.total_steps(len(train))
    optimizer = make_optimizer(model, budget)
    batch_size = min(budget.batch_size, len(train))
    result: dict[str, Any] = {"status": "ok", "reason": "", "steps": 0, "device": str(device)}
    forward, result["compiled"] = compiled_forward(model, compile_mode)
    loss_value = float("nan")
    if on_cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    model.train()
    order = torch.randperm(len(train), generator=generator, device=device)
    cursor = 0
    rung_set = {r for r in rungs if 0 < r < total} if report is not None else set()
    for step in range(total):
        if cursor + batch_size > len(train):
            order, cursor = torch.randperm(len(train), generator=generator, device=device), 0
        index = order[cursor:cursor + batch_size]
        cursor += batch_size
        x, y = train.augmented_batch(index, generator, torch.float32)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, total, budget.lr, budget.warmup_fraction)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_cuda):
            try:
                logits = forward(x)
            except Exception as exc:  # noqa: BLE001 - compiling happens at the first call: fall back there
                if forward is model or step > 0:
                    raise
                forward, result["compiled"] = model, f"eager ({type(exc).__name__} while compiling)"
                logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=budget.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result["steps"] = step + 1
        if step % 10 == 0 or step == total - 1:
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                result.update(status="failed", reason=f"loss became {loss_value} at step {step}")
                break
        if step + 1 in rung_set:
            report(step + 1, _accuracy_at_rung(model, train, val, budget, on_cuda))
    if on_cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    result.update(final_loss=loss_value, train_seconds=seconds,
                  images_per_second=result["steps"] * batch_size / max(seconds, 1e-9))
    if result["status"] == "ok":
        recalibrate_batchnorm(model, train, budget.eval_batch_size, 4, on_cuda)
        result["accuracy"] = top1_accuracy(model, val, budget.eval_batch_size, on_cuda)
    else:
        result["accuracy"] = 0.0
    return result
