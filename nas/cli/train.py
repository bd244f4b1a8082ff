"""nas-train: train a spec (or a search's best_b0.json) for real with Ray Train (the driver is nas.retrain.driver)."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, Sequence

from nas.data.datasets import data_formats
from nas.cli.common import (ArgumentParser, UsageError, add_quiet_argument, non_negative_float, non_negative_int,
                            positive_float, positive_int, run_command, seed_number)
from nas.retrain.config import TrainSettings, default_split_seed, saved_settings
from nas.signals import on_stop
from nas.training.recipe import LR_PER_256, OPTIMIZERS, WEIGHT_DECAY, TrainRecipe

RECIPE_FLAGS = [f.name for f in fields(TrainRecipe)]


def _train_parser() -> ArgumentParser:
    d = TrainRecipe()
    p = ArgumentParser(prog="nas-train", description="Train a B0 spec (or a scaled one) for real: DDP workers on Ray "
                       "Train, EMA weights, held-out accuracy every epoch, test accuracy at the end.",
                       usage="nas-train SPEC --data DATA [options]\n       nas-train --resume --out RUN [options]")
    p.add_argument("spec", nargs="?", help="a B0 spec JSON file, or a nas-search run directory (its best_b0.json)")
    p.add_argument("--trial", type=non_negative_int, help="with a nas-search run directory: train this trial of "
                   "its trials.csv (default: its best; nas-search's close-call line names the trials to try)")
    p.add_argument("--data", help=f"training data (default: synthetic): {data_formats()}; a held-out split is "
                   "taken as nas-search does (or val/ as given), and a test split (test_batch, test/, x_test/y_test, "
                   "a CSV's test rows) is measured once at the end")
    p.add_argument("--resolution", type=positive_int, help="training resolution; the data is resized once "
                   "(default: the spec's)")
    recipe = p.add_argument_group("the recipe (defaults chosen on CIFAR-10 at 32 px, see docs/training.md)")
    recipe.add_argument("--epochs", type=positive_int, help=f"training epochs (default: {d.epochs})")
    recipe.add_argument("--batch-size", type=positive_int,
                        help=f"global batch, split over the workers (default: {d.batch_size})")
    recipe.add_argument("--optimizer", choices=OPTIMIZERS, help=f"sgd (Nesterov), adamw, or rmsprop as in the "
                        f"EfficientNet paper (default: {d.optimizer})")
    recipe.add_argument("--lr", type=positive_float, help="peak learning rate for the global batch (default: "
                        + ", ".join(f"{v:g} x batch/256 for {k}" for k, v in LR_PER_256.items()) + ")")
    recipe.add_argument("--weight-decay", type=non_negative_float, help="on conv and linear weights, not on "
                        "BatchNorm or biases (default: " + ", ".join(f"{v:g} for {k}" for k, v in
                                                                     WEIGHT_DECAY.items()) + ")")
    recipe.add_argument("--warmup-epochs", type=non_negative_float,
                        help=f"linear warm-up before the cosine decay (default: {d.warmup_epochs:g}, cut short in a "
                             f"shorter training)")
    recipe.add_argument("--label-smoothing", type=non_negative_float, help=f"(default: {d.label_smoothing:g})")
    recipe.add_argument("--ema-decay", type=non_negative_float, help=f"EMA of the weights, with TF's warm-up "
                        f"min(decay, (1+n)/(10+n)); evaluated beside the raw weights (default: {d.ema_decay:g})")
    recipe.add_argument("--crop-scale", type=positive_float, help=f"random-resized-crop: the smallest crop as a "
                        f"fraction of the image area, with a random flip (default: {d.crop_scale:g})")
    recipe.add_argument("--seed", type=seed_number, help=f"seed of the weights and the data order (default: "
                        f"{d.seed})")
    p.add_argument("--split-seed", type=seed_number, help="seed of the held-out split: another --seed trains on "
                   "the same images (default: the search's --seed when SPEC is a nas-search run, else 0)")
    p.add_argument("--out", help="run directory (default: runs/train-<name>-<YYYYmmdd-HHMMSS>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    where = p.add_argument_group("where it runs (Ray Train)")
    where.add_argument("--workers", type=positive_int, help="DDP workers (default: 1)")
    where.add_argument("--gpus-per-worker", type=non_negative_float,
                       help="GPUs per worker (default: 1 when the cluster has a GPU for each worker, else 0)")
    where.add_argument("--cpus-per-worker", type=positive_float,
                       help="CPUs per worker (default: this machine's CPUs / --workers on CPU; up to 8 per GPU); "
                       "beside other CPU-bound work give 1: 2.5x faster there than the default")
    where.add_argument("--address", help="join this Ray cluster (auto or host:port; --out must then be on storage "
                       "every node sees) instead of starting a local one (default: a local Ray instance)")
    p.add_argument("--debug", action="store_true", help="show tracebacks and Ray's own output")
    add_quiet_argument(p)
    return p


def _settings(args: argparse.Namespace):
    given = {k: v for k, v in vars(args).items() if k in RECIPE_FLAGS and v is not None}
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out, the run directory to continue")
        saved = saved_settings(args.out)
        changed = [k for k, v in given.items() if getattr(saved.recipe, k) != v]
        if changed:
            raise UsageError(f"--resume continues with the run's own recipe; --{changed[0].replace('_', '-')} "
                             f"differs from it ({getattr(saved.recipe, changed[0])})")
        for name in ("data", "resolution", "split_seed"):
            if getattr(args, name) is not None and getattr(args, name) != _effective(saved, name):
                raise UsageError(f"--resume continues with the run's own --{name} ({_effective(saved, name)})")
        if args.trial is not None and args.trial != saved.trial:
            raise UsageError(f"--resume continues with the run's own --trial ({saved.trial})")
        if args.spec:
            saved.spec = args.spec  # checked against the checkpoint's architecture
        saved.out = args.out
        for name in ("workers", "gpus_per_worker", "cpus_per_worker", "address"):
            if getattr(args, name) is not None:
                setattr(saved, name, getattr(args, name))
        saved.debug = bool(args.debug)
        return saved
    if not args.spec:
        raise UsageError("a spec is required: nas-train SPEC.json --data DATA (or a nas-search run directory)")
    try:
        recipe = TrainRecipe(**given)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if "warmup_epochs" in given and recipe.warmup_epochs >= recipe.epochs:  # a default warm-up is cut short
        raise UsageError(f"--warmup-epochs {recipe.warmup_epochs:g}: must be fewer than --epochs {recipe.epochs} "
                         f"(the warm-up would take the whole training)")
    return TrainSettings(spec=args.spec, trial=args.trial, data=args.data or "synthetic", recipe=recipe,
                         resolution=args.resolution, out=args.out, workers=args.workers or 1,
                         gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker,
                         address=args.address, debug=bool(args.debug),
                         split_seed=args.split_seed if args.split_seed is not None else default_split_seed(args.spec))


def _effective(saved: Any, name: str) -> Any:
    """A saved run's setting as it takes effect: ``resolution`` None is its spec's."""
    if name == "resolution" and saved.resolution is None:
        from nas.retrain.driver import resolve_spec

        return resolve_spec(saved.spec, saved.trial).resolution
    return getattr(saved, name)


def _train(args: argparse.Namespace) -> int:
    from nas.api import train_from_settings
    from nas.retrain.driver import with_run_directory

    settings = with_run_directory(_settings(args))
    on_stop("nas-train", resume=f"nas-train --resume --out {settings.out}")
    train_from_settings(settings, resume=args.resume)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nas-train``."""
    return run_command("nas-train", _train, _train_parser(), argv)
