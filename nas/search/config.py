"""The one typed configuration of a search: from the command line to the driver and, as is, to every trial.

The command line's defaults are this dataclass's defaults; ``search.json`` holds ``to_dict()``; ``--resume``
merges what the user gave into the saved configuration with :meth:`SearchConfig.resumed`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nas.console import describe_reward
from nas.data.datasets import is_built_in, stored_resolution
from nas.errors import UserInputError
from nas.search.candidates import CandidateDecoder
from nas.search.reward import mnas_reward, parse_flops_target
from nas.search.start_points import Sizing, expand_start_from
from nas.training.proxy_settings import ProxySettings
from nas.training.recipe import PROXY_LR, TrainRecipe
from search_spaces import REFERENCES
from search_spaces.mnasnet import (MnasNetConfig, MnasNetSpace, default_space, default_space_for,
                                   mnasnet_paper_config)
from search_spaces.space import SpaceError
from search_spaces.spec import MAX_CLASSES, MAX_RESOLUTION, MIN_RESOLUTION, load_spec

# what a resumed search may change: the budget of trials, the resources, the cache and the output, and the
# reward (the recorded trials are rescored with it, and the controller is told the rescored history)
RESUMABLE = ("out", "trials", "address", "gpus_per_trial", "cpus_per_trial", "concurrency", "cache", "no_cache",
             "debug", "window", "scheduler", "finalists", "finalist_epochs")
SCHEDULERS = ("none", "asha")
# a new search's --finalists on any --data but the built-in synthetic: on both real data sets measured, 3
# finalists trained 15 epochs gave a better network on test than the proxy's pick (figures: docs/search.md)
FINALISTS_ON_REAL_DATA = 3
# the search's proxy trains each candidate at a quarter of its channels: the cheapest proxy whose Kendall tau
# against real trainings reached 0.6 on both real data sets measured (figures: docs/proxy-check.md). Runs saved
# before it trained at full width (from_dict); nas-scale --grid-search keeps full width (ProxySettings)
SEARCH_PROXY_WIDTH = 0.25
DEFAULT_WINDOW = (0.5, 1.5)  # chosen on benchmarks/controller_landscapes.py; see docs/search-efficiency.md
RESCORING = ("target_flops", "target_latency_ms", "w", "reward")


def _new_space(given: dict[str, Any], fit_width: bool | None, max_resolution: int | None) -> MnasNetConfig:
    """A new search's space (see :meth:`SearchConfig.new`): the given or default one, its widths fitted or not,
    its input sizes searched or not."""
    space = MnasNetConfig.from_dict(given["space"]) if given.get("space") else default_space_for(
        given.get("resolution")).config
    flops_only = given.get("target_flops") is not None and not given.get("target_latency_ms") and not given.get(
        "latency_table")
    if fit_width and not flops_only:
        raise UserInputError("--fit-width: fits the widths to a FLOPs target alone (--target-flops without "
                             "--target-latency)")
    # fitted only when asked (--fit-width, or a space file's fit_width): on CIFAR-10 fitted searches found networks
    # real training ranked below the space's B0 (docs/results-real-data.md)
    wanted = bool(fit_width) if fit_width is not None else space.fit_width
    space.fit_width = wanted and flops_only
    resolution = int(given.get("resolution", SearchConfig.resolution))
    proxy_at_size = space.reduction_strides != [2] or given.get("proxy_resolution") == resolution
    if max_resolution is not None:
        why_not = (f"below --resolution {resolution}, the smallest size the search tries" if max_resolution < resolution
                   else "the widths are not fitted (give --fit-width; not with a latency target)" if not space.fit_width
                   else f"the proxy trains at --proxy-resolution, not at --resolution {resolution} (give "
                        f"--space downsampling, or --proxy-resolution {resolution})" if not proxy_at_size else "")
        if why_not:
            raise UserInputError(f"--max-resolution {max_resolution}: {why_not}")
    if space.fit_width and proxy_at_size and not space.resolutions and "resolution" in given:
        largest = max_resolution or stored_resolution(str(given.get("data", SearchConfig.data)))
        sizes = resolution_steps(resolution, largest) if largest else []
        space.resolutions = sizes if len(sizes) > 1 else []
    return space


RESOLUTION_STEPS = (1.0, 1.25, 1.5, 1.75, 2.0)  # a searched input size: the stated one times these


def resolution_steps(resolution: int, largest: int) -> list[int]:
    """The input sizes a search tries from ``resolution`` (the size a user states) up to ``largest`` (the
    images' stored size or a cap): ``resolution`` x RESOLUTION_STEPS, multiples of 8, at most ``largest``."""
    sizes = {int(resolution * step / 8 + 0.5) * 8 for step in RESOLUTION_STEPS} | {resolution}
    return sorted(size for size in sizes if resolution <= size <= largest)


def _shown(value: Any) -> str:
    """A setting's value as a flag would give it: ``a,b`` for a list, ``none`` for an empty one."""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "none"
    return str(value)


@dataclass
class SearchConfig:
    """Everything that defines one search; written to ``search.json`` first, passed to every trial.

    Flat, as search.json has always held it: the proxy's fields (data, val_fraction, proxy_resolution,
    proxy_width, steps, epochs, batch_size, optimizer, lr, seed) are read as one value by :attr:`proxy`; the objective (targets,
    reward, w, window) and the resources are the rest.
    """

    # None: latency is the only objective (then target_latency_ms is set); a reference network's name (b0 ...):
    # its FLOPs at ``resolution``, counted by :meth:`with_counted_target` once the data's class count is known
    target_flops: int | str | None
    out: str
    controller: str = "predictor"
    trials: int = 40  # with ASHA stopping weak ones at 1/4 and 1/2 of their steps: 48 candidates in ~12 min
    # on a 2-core CPU (docs/search-efficiency.md)
    epochs: float | None = ProxySettings.epochs
    steps: int | None = ProxySettings.steps
    batch_size: int = ProxySettings.batch_size
    optimizer: str = ProxySettings.optimizer  # the proxy training's optimizer: adamw, sgd or rmsprop
    lr: float | None = ProxySettings.lr  # peak learning rate; None: the optimizer's default (PROXY_LR)
    data: str = ProxySettings.data
    val_fraction: float = ProxySettings.val_fraction
    proxy_resolution: int = ProxySettings.resolution
    proxy_width: float = SEARCH_PROXY_WIDTH  # the proxy trains each candidate at this width multiplier
    resolution: int = 224
    num_classes: int | None = None
    reward: str = "soft"
    w: float = -0.07
    seed: int = ProxySettings.seed
    address: str | None = None
    gpus_per_trial: float | None = None
    cpus_per_trial: float | None = None
    concurrency: int | None = None
    cache: str | None = None  # the result cache's file; None: $NAS_CACHE_DIR/results.sqlite
    no_cache: bool = False
    debug: bool = False  # Ray's own output on the console, tracebacks
    controller_options: dict[str, Any] = field(default_factory=dict)
    # candidates whose analytic FLOPs at ``resolution`` (and predicted latency) fall outside [lo, hi] x their
    # target are not trained (--flops-window)
    window: tuple[float, float] = DEFAULT_WINDOW
    scheduler: str = "asha"  # Ray Tune's ASHA stops weak candidates at rungs of the step budget; "none": off
    # MnasNet's latency objective: a target in ms and the nas-latency-table file that predicts every candidate's
    target_latency_ms: float | None = None
    latency_table: str | None = None
    # networks trained before the controller proposes (nas.search.start_points): reference names or spec files
    start_from: tuple[str, ...] = ()
    # the search space's configuration (MnasNetConfig's fields, --space FILE): the space that trials.csv's
    # choices index into, saved with the run so that a change of the default space never re-decodes it
    space: dict[str, Any] = field(default_factory=lambda: default_space().config.to_dict())
    # after the search, the best candidates by proxy reward and the space's nearest B0 trained with nas-train's
    # recipe and judged on the held-out split (nas.search.final_stage); 0: the proxy's winner is the result. A new
    # search on a user's data takes FINALISTS_ON_REAL_DATA (SearchConfig.new); 0 here reads old runs as they ran
    finalists: int = 0
    finalist_epochs: float = 15

    def __post_init__(self) -> None:
        if self.target_flops is None and self.target_latency_ms is None:
            raise UserInputError("a target is required: --target-flops (e.g. 400M), --target-latency (e.g. 20ms) "
                                 "or both")
        if isinstance(self.target_flops, str):
            try:
                self.target_flops = parse_flops_target(self.target_flops)
            except ValueError as exc:
                raise UserInputError(f"--target-flops: {exc}") from None
        if self.target_latency_ms is not None:
            if not 0 < self.target_latency_ms < float("inf"):
                raise UserInputError(f"--target-latency {self.target_latency_ms:g} ms: must be positive")
            if not self.latency_table:
                raise UserInputError("--target-latency needs a latency table: --latency-table FILE "
                                     "(nas-latency-table) or --latency-device cpu")
        self.proxy  # the proxy's fields checked as one value
        if self.resolution < MIN_RESOLUTION:
            raise UserInputError(f"--resolution {self.resolution}: must be at least {MIN_RESOLUTION}")
        if self.resolution > MAX_RESOLUTION:
            raise UserInputError(f"--resolution {self.resolution}: at most {MAX_RESOLUTION}")
        if self.num_classes is not None and not 1 < self.num_classes <= MAX_CLASSES:
            raise UserInputError(f"--num-classes {self.num_classes}: must be 2..{MAX_CLASSES:,}")
        if self.reward not in ("soft", "hard"):
            raise UserInputError(f"--reward {self.reward!r}: expected soft or hard")
        if not -10 <= self.w <= 0:  # a positive w rewards bigger networks: the opposite of a budget
            raise UserInputError(f"--w {self.w:g}: must be between -10 and 0 (MnasNet's is -0.07; 0 ignores the "
                                 f"target)")
        if self.finalists < 0 or not 0 < self.finalist_epochs < float("inf"):
            raise UserInputError(f"--finalists {self.finalists} / --finalist-epochs {self.finalist_epochs:g}: "
                                 f"expected K >= 0 and positive epochs")
        if self.scheduler not in SCHEDULERS:
            raise UserInputError(f"--scheduler {self.scheduler!r}: expected one of {', '.join(SCHEDULERS)}")
        lo, hi = (float(v) for v in self.window)
        if not 0 <= lo < hi:
            raise UserInputError(f"--flops-window {lo:g},{hi:g}: expected 0 <= LO < HI, e.g. 0.5,1.5 (0,inf: off)")
        self.window = (lo, hi)
        self.start_from = expand_start_from([self.start_from] if isinstance(self.start_from, str)
                                            else list(self.start_from))
        try:  # stored whole (every field), so that the run reads the same whatever the defaults become
            space = MnasNetConfig.from_dict(self.space)
        except SpaceError as exc:
            raise UserInputError(str(exc)) from None
        self.space = space.to_dict()
        if len(space.resolutions) > 1:
            if self.target_latency_ms:
                raise UserInputError(f"--target-latency: a latency table is measured at one input size; the space "
                                     f"searches {space.resolutions} px (give a space without resolutions)")
            if self.proxy_resolution < max(space.resolutions):
                raise UserInputError(f"--proxy-resolution {self.proxy_resolution}: the space searches input sizes "
                                     f"up to {max(space.resolutions)} px; the proxy decodes the images at the "
                                     f"largest (leave --proxy-resolution out)")

    @classmethod
    def new(cls, fit_width: bool | None = None, max_resolution: int | None = None, **given: Any) -> "SearchConfig":
        """A new search's configuration from what a user gave (the command line's flags, the API's arguments):
        in a space that searches the downsampling, the proxy trains at ``resolution`` when only that is given
        (the strides are chosen at the size the network runs at); on a user's data (not data the toolkit makes,
        such as ``synthetic``) ``finalists`` defaults to FINALISTS_ON_REAL_DATA.

        The space (given, or the default of the size, ``default_space_for``) fits every network's widths to a
        FLOPs target when ``fit_width`` is True (None: as the space says; never with a latency target: a latency
        table predicts only the widths it was measured at). When it fits, the proxy trains at the networks' size and the images are
        stored larger than ``resolution`` (``max_resolution``: a cap; default: the data's stored size), the input
        size is searched in steps from ``resolution`` up to it (:func:`resolution_steps`): the proxy decodes the
        images once at the largest and trains each candidate at its own."""
        space = _new_space(given, fit_width, max_resolution)
        resolution = int(given.get("resolution", cls.resolution))
        given = {**given, "space": space.to_dict()}
        if MnasNetSpace(space).searches_resolution and "proxy_resolution" not in given:
            given = {**given, "proxy_resolution": max(space.resolutions)}
        elif MnasNetSpace(space).searches_strides and "resolution" in given and "proxy_resolution" not in given:
            given = {**given, "proxy_resolution": resolution}
        if given.get("finalists") is None:
            built_in = is_built_in(str(given.get("data", cls.data)))
            given = {**given, "finalists": 0 if built_in else FINALISTS_ON_REAL_DATA}
        return cls(**given)

    def warnings(self) -> list[str]:
        """Values that are allowed but probably not meant, as ``warning:`` lines: a learning rate far above the
        optimizer's default (the proxy training diverges and every candidate fails), ``--w`` with the hard
        reward (which does not use it)."""
        out = self.proxy.warnings()
        space = self.search_space()
        # (with the size searched, each candidate trains at its own, from images decoded at the largest)
        if space.searches_strides and not space.searches_resolution and self.proxy_resolution != self.resolution:
            out.append(f"warning: the space searches the downsampling, but the proxy trains at "
                       f"{self.proxy_resolution} px and the networks run at {self.resolution} px (--resolution): "
                       f"the strides are chosen for {self.proxy_resolution} px; give --resolution as your images' "
                       f"size")
        if self.reward == "hard" and self.w != SearchConfig.w:
            out.append(f"warning: --w {self.w:g} is not used by the hard reward (exponent 0 under the target, -1 "
                       f"over it)")
        return out

    def with_counted_target(self, num_classes: int) -> "SearchConfig":
        """This configuration with a target given as a reference network's name (``b0``) made a number: that
        network's FLOPs at ``resolution`` with the run's class count (``num_classes`` unless given)."""
        if not isinstance(self.target_flops, str):
            return self
        from nas.network.counting import profile

        reference = load_spec(REFERENCES / f"{self.target_flops}.json")
        counts = profile(reference, self.resolution, method="analytic", num_classes=self.num_classes or num_classes)
        return dataclasses.replace(self, target_flops=counts["flops"])

    # -- the parts of the configuration that other modules use
    @property
    def fit_flops(self) -> float | None:
        """The FLOPs every network's widths are fitted to (a space with ``fit_width``, a FLOPs target and no
        latency target or table): the target, or the window's top when that is below it; None: not fitted."""
        if not self.space.get("fit_width") or not self.target_flops or self.target_latency_ms or self.latency_table:
            return None
        if isinstance(self.target_flops, str):
            raise ValueError(f"target {self.target_flops!r} not counted yet (with_counted_target)")
        return float(self.target_flops) * min(1.0, self.window[1])

    def decoder(self, num_classes: int, space: MnasNetSpace | None = None) -> CandidateDecoder:
        """How this run's choices become networks (``num_classes``: the data's, unless the run sets its own;
        ``space``: the run's space when the caller holds it already, else built from ``self.space``)."""
        return CandidateDecoder(space or self.search_space(), self.resolution, self.num_classes or num_classes,
                                self.fit_flops)

    def sizing(self, num_classes: int) -> Sizing:
        """What the ``levels`` start points are sized to: the FLOPs target and window at ``resolution``, with the
        run's class count (``num_classes`` unless given)."""
        return Sizing(self.target_flops, self.window, self.resolution, self.num_classes or num_classes)

    def search_space(self) -> MnasNetSpace:
        """The space this search proposes from and its records decode with."""
        return MnasNetSpace(MnasNetConfig.from_dict(self.space))

    @property
    def proxy(self) -> ProxySettings:
        """The proxy's settings as one value (the same for nas-proxy-check and nas-scale --grid-search)."""
        return ProxySettings.from_fields(asdict(self))

    def budget(self) -> TrainRecipe:
        """How every candidate is trained: the one recipe at the proxy's fidelity (steps or epochs, batch)."""
        return self.proxy.recipe()

    def score(self, accuracy: float, flops: float, latency_ms: float = 0.0) -> float:
        """MnasNet's reward of a measured accuracy under this search's targets, on the driver: one factor
        ``(FLOPs / T) ** w`` per objective set (FLOPs, predicted latency), so both multiply when both are set."""
        reward = float(accuracy)
        for value, target in ((flops, self.target_flops), (latency_ms, self.target_latency_ms)):
            if target:
                if not value or not value > 0:
                    return 0.0
                reward = mnas_reward(reward, value, target, self.w, self.reward)
        return reward

    @property
    def screening(self) -> bool:
        """Whether the window is on (anything but ``0,inf``)."""
        return self.window != (0.0, float("inf"))

    def screens(self, flops: float, latency_ms: float = 0.0) -> bool:
        """Whether a candidate (FLOPs at ``resolution``, predicted latency) is kept from training by the window:
        outside ``window`` x the target of any objective that is set."""
        lo, hi = self.window
        return any(target and not lo * target <= (value or 0) <= hi * target
                   for value, target in ((flops, self.target_flops), (latency_ms, self.target_latency_ms)))

    def describe_reward(self) -> str:
        """``soft reward (w=-0.07)`` or ``hard reward (accuracy at or under the target)``, for log lines."""
        return describe_reward(self.reward, self.w)

    def describe_target(self) -> str:
        """``400M FLOPs at 224px``, ``20 ms (predicted)`` or both, for log lines and titles."""
        parts = []
        if self.target_flops:
            parts.append(f"{self.target_flops / 1e6:g}M FLOPs at {self.resolution}px")
        if self.target_latency_ms:
            parts.append(f"{self.target_latency_ms:g} ms latency (predicted)")
        return " and ".join(parts)

    # -- files and resume
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SearchConfig":
        """From ``search.json``'s ``config``; keys of older versions that no longer exist are ignored."""
        known = {f.name for f in fields(cls)}
        if "flops_window" in values:  # its name before it screened latency too
            values = {"window": values["flops_window"], **values}
        values = {k: v for k, v in values.items() if k in known}
        values.setdefault("optimizer", "sgd")  # runs from before the choice trained with SGD
        values.setdefault("start_from", ())  # runs from before start points started from none
        values.setdefault("space", mnasnet_paper_config().to_dict())  # runs from before the space was saved
        values.setdefault("proxy_width", ProxySettings.width)  # runs from before the narrow proxy: full width
        return cls(**values)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Field name -> default, for the command line's help and for the values the user did not give."""
        out = {}
        for f in fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
        return out

    def resumed(self, given: dict[str, Any], num_classes: int | None = None) -> "SearchConfig":
        """This (saved) configuration continued with what the user gave on ``--resume`` (``num_classes``: the
        class count of the run's networks, when known).

        The trial budget, resources, cache and debug output may change; a new target, ``w`` or reward form
        rescores the recorded trials. Anything else that differs from the run's definition is a user error; a
        setting given at the value the run already takes effect with is not a change.
        """
        changes = {}
        for key, value in given.items():
            if key in RESUMABLE or key in RESCORING:
                changes[key] = value
            elif key == "space":
                mine, theirs = MnasNetConfig.from_dict(self.space), MnasNetConfig.from_dict(value)
                if mine != theirs:
                    raise UserInputError(f"--resume: --space describes another space ({theirs.fingerprint()}) than "
                                         f"the run's ({mine.fingerprint()}, kept as space.json in the run); start a "
                                         f"new run with another --out instead")
            elif self.effective(key, getattr(self, key), num_classes) != self.effective(key, value, num_classes):
                flag = "--" + key.replace("_", "-")
                raise UserInputError(f"--resume: {flag} {_shown(value)} differs from the run's "
                                     f"({_shown(self.effective(key, getattr(self, key), num_classes))}); "
                                     f"start a new run with another --out instead")
        resumed = dataclasses.replace(self, **changes)
        counted = resumed.with_counted_target(num_classes or 1000)
        if self.space.get("fit_width") and counted.fit_flops != self.with_counted_target(num_classes or 1000).fit_flops:
            raise UserInputError("--resume: the run fits every network's widths to its FLOPs target, so another "
                                 "target (or window) would change the networks its trials decode to; start a new "
                                 "run with another --out instead (the result cache serves what it can)")
        return resumed

    def effective(self, key: str, value: Any, num_classes: int | None = None) -> Any:
        """The value a setting takes effect with, so that a flag given at it on ``--resume`` is not taken for a
        change: None (the default) as what it stands for (the optimizer's learning rate; the data's class count,
        ``num_classes``, when known), start points as the names they expand to (``none``: no start points)."""
        if key == "lr" and value is None:
            return PROXY_LR[self.optimizer]
        if key == "num_classes" and value is None:
            return num_classes
        if key == "start_from":
            return expand_start_from([value] if isinstance(value, str) else list(value))
        return value

    def rescores(self, other: "SearchConfig") -> bool:
        """Whether ``other`` scores trials differently from this configuration."""
        return any(getattr(self, key) != getattr(other, key) for key in RESCORING)
