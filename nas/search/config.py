"""The one typed configuration of a search: from the command line to the driver and, as is, to every trial.

Its parts (the objective, the proxy, the space, the resources, the final stage) are frozen and check
themselves; the command line's defaults are their defaults; ``search.json`` holds ``to_dict()``, flat as it
always was; ``--resume`` merges what the user gave into the saved configuration (nas.search.resuming).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from controllers import CONTROLLERS, unavailable
from nas.data.datasets import is_built_in, stored_resolution
from nas.engine.runner import TrialResources
from nas.errors import SettingError, UserInputError
from nas.search.candidates import CandidateDecoder
from nas.search.objective import DEFAULT_WINDOW, Objective
from nas.search.start_points import Sizing, expand_start_from
from nas.training.proxy_settings import FLAT_NAMES as PROXY_FLAT_NAMES
from nas.training.proxy_settings import ProxySettings
from search_spaces.mnasnet import (MnasNetConfig, MnasNetSpace, default_space, default_space_for,
                                   mnasnet_paper_config)
from search_spaces.space import SpaceError

__all__ = ["DEFAULT_WINDOW", "FINALISTS_ON_REAL_DATA", "FinalStage", "Objective", "SearchConfig",
           "resolution_steps"]

SCHEDULERS = ("none", "asha")
# a new search's --finalists on any --data but the built-in synthetic: on both real data sets measured, 3
# finalists trained 15 epochs gave a better network on test than the proxy's pick (figures: docs/search.md)
FINALISTS_ON_REAL_DATA = 3
# the search's proxy trains each candidate at a quarter of its channels: the cheapest proxy whose Kendall tau
# against real trainings reached 0.6 on both real data sets measured (figures: docs/proxy-check.md). Runs saved
# before it trained at full width (from_dict); nas-scale --grid-search keeps full width (ProxySettings)
SEARCH_PROXY_WIDTH = 0.25


def _new_space(given: dict[str, Any], fit_width: bool | None, max_resolution: int | None) -> MnasNetConfig:
    """A new search's space (see :meth:`SearchConfig.new`): the given or default one, its widths fitted or not,
    its input sizes searched or not."""
    space = MnasNetConfig.from_dict(given["space"]) if given.get("space") else default_space_for(
        given.get("resolution")).config
    flops_only = given.get("target_flops") is not None and not given.get("target_latency_ms") and not given.get(
        "latency_table")
    if fit_width and not flops_only:
        raise SettingError("fit_width", "fits the widths to a FLOPs target alone, not with a latency target or "
                                        "table")
    # fitted only when asked (--fit-width, or a space file's fit_width): on CIFAR-10 fitted searches found networks
    # real training ranked below the space's B0 (docs/results-real-data.md)
    wanted = bool(fit_width) if fit_width is not None else space.fit_width
    space = dataclasses.replace(space, fit_width=wanted and flops_only)
    resolution = int(given.get("resolution", DEFAULTS["resolution"]))
    proxy_at_size = space.reduction_strides != [2] or given.get("proxy_resolution") == resolution
    if max_resolution is not None:
        why_not = (f"below the networks' resolution, {resolution} px, the smallest size the search tries"
                   if max_resolution < resolution
                   else "the widths are not fitted (fit the widths; not with a latency target)" if not space.fit_width
                   else f"the proxy trains at its own resolution, not at the networks' {resolution} px (give the "
                        f"downsampling space, or the proxy resolution {resolution})" if not proxy_at_size else "")
        if why_not:
            raise SettingError("max_resolution", why_not, max_resolution)
    if space.fit_width and proxy_at_size and not space.resolutions and "resolution" in given:
        largest = max_resolution or stored_resolution(str(given.get("data", DEFAULTS["data"])))
        sizes = resolution_steps(resolution, largest) if largest else []
        space = dataclasses.replace(space, resolutions=sizes if len(sizes) > 1 else [])
    return space


RESOLUTION_STEPS = (1.0, 1.25, 1.5, 1.75, 2.0)  # a searched input size: the stated one times these


def resolution_steps(resolution: int, largest: int) -> list[int]:
    """The input sizes a search tries from ``resolution`` (the size a user states) up to ``largest`` (the
    images' stored size or a cap): ``resolution`` x RESOLUTION_STEPS, multiples of 8, at most ``largest``."""
    sizes = {int(resolution * step / 8 + 0.5) * 8 for step in RESOLUTION_STEPS} | {resolution}
    return sorted(size for size in sizes if resolution <= size <= largest)


FLAT_NAMES: dict[str, tuple[str, str]] = {}  # filled below: a flat setting -> (its part, its field there)


@dataclass(frozen=True)
class FinalStage:
    """After the search, the best candidates by proxy reward and the space's nearest B0 trained with nas-train's
    recipe and judged on the held-out split (nas.search.final_stage); 0 finalists: the proxy's winner is the
    result. A new search on a user's data takes FINALISTS_ON_REAL_DATA (SearchConfig.new); 0 reads old runs as
    they ran."""

    finalists: int = 0
    epochs: float = 15  # nas-train epochs of each finalist

    def __post_init__(self) -> None:
        if self.finalists < 0:
            raise SettingError("finalists", "expected 0 or more", self.finalists)
        if not 0 < self.epochs < float("inf"):
            raise SettingError("epochs", "must be positive", self.epochs)


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines one search, in parts that each check themselves; written to ``search.json``
    first (flat, :meth:`to_dict`, as it has always been), passed to every trial.

    Made from flat settings (the flags' and the API's names, search.json's keys) by :meth:`of`; errors name
    the flat settings (:class:`~nas.errors.SettingError`), and the command line spells them as its flags.
    """

    objective: Objective  # the targets, the reward, the window
    proxy: ProxySettings = ProxySettings(width=SEARCH_PROXY_WIDTH)  # how each candidate trains: data, fidelity, seed
    # the search space (MnasNetConfig's fields, --space FILE): the space that trials.csv's choices index into,
    # saved whole with the run so that a change of the default space never re-decodes it
    space: MnasNetConfig = dataclasses.field(default_factory=lambda: default_space().config)
    resources: TrialResources = TrialResources()  # where trials run, the result cache, Ray's output
    final_stage: FinalStage = FinalStage()
    out: str = ""
    controller: str = "predictor"
    controller_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    trials: int = 40  # with ASHA stopping weak ones at 1/4 and 1/2 of their steps
    scheduler: str = "asha"  # Ray Tune's ASHA stops weak candidates at rungs of the step budget; "none": off
    # networks trained before the controller proposes (nas.search.start_points): reference names or spec files
    start_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.controller not in CONTROLLERS:
            raise SettingError("controller", f"expected one of {', '.join(CONTROLLERS)}", repr(self.controller))
        missing = unavailable(self.controller)
        if missing:
            raise SettingError("controller", missing, self.controller)
        if self.scheduler not in SCHEDULERS:
            raise SettingError("scheduler", f"expected one of {', '.join(SCHEDULERS)}", repr(self.scheduler))
        start_from = [self.start_from] if isinstance(self.start_from, str) else list(self.start_from)
        object.__setattr__(self, "start_from", expand_start_from(start_from))
        resolutions = self.space.resolutions
        if len(resolutions) > 1:
            if self.objective.target_latency_ms:
                raise SettingError("target_latency_ms", f"a latency table is measured at one input size; the "
                                   f"space searches {resolutions} px (give a space without resolutions)")
            if self.proxy.resolution < max(resolutions):
                raise SettingError("proxy_resolution", f"the space searches input sizes up to {max(resolutions)} "
                                   f"px; the proxy decodes the images at the largest (leave it out)",
                                   self.proxy.resolution)

    @classmethod
    def of(cls, **flat: Any) -> "SearchConfig":
        """From flat settings (search.json's keys, the flags' and the API's names); what is not given takes its
        default. An unknown name, or a value a part refuses, is a SettingError naming the flat setting."""
        unknown = sorted(set(flat) - set(FLAT_NAMES))
        if unknown:
            raise SettingError(unknown[0], "not a setting of a search (known: "
                               f"{', '.join(sorted(FLAT_NAMES))})")
        given: dict[str, dict[str, Any]] = {}
        for name, value in flat.items():
            part, own = FLAT_NAMES[name]
            given.setdefault(part, {})[own] = value
        parts: dict[str, Any] = {}
        for part, kind in PARTS.items():
            own_names = {own: name for name, (where, own) in FLAT_NAMES.items() if where == part}
            try:
                default = PART_DEFAULTS.get(part)  # the search's own default of the part, where it has one
                own = given.get(part, {})
                parts[part] = dataclasses.replace(default, **own) if default is not None else kind(**own)
            except SettingError as exc:
                raise exc.renamed(own_names) from None
        if "space" in flat:
            try:
                parts["space"] = MnasNetConfig.from_dict(dict(flat["space"]))
            except SpaceError as exc:
                raise UserInputError(str(exc)) from None
        run = {name: value for name, value in given.get("", {}).items() if name != "space"}
        return cls(**parts, **run)

    @classmethod
    def new(cls, fit_width: bool | None = None, max_resolution: int | None = None, **given: Any) -> "SearchConfig":
        """A new search's configuration from flat settings a user gave (the command line's flags, the API's
        arguments): in a space that searches the downsampling, the proxy trains at ``resolution`` when only that
        is given (the strides are chosen at the size the network runs at); on a user's data (not data the
        toolkit makes, such as ``synthetic``) ``finalists`` defaults to FINALISTS_ON_REAL_DATA.

        The space (given, or the default of the size, ``default_space_for``) fits every network's widths to a
        FLOPs target when ``fit_width`` is True (None: as the space says; never with a latency target: a latency
        table predicts only the widths it was measured at). When it fits, the proxy trains at the networks' size
        and the images are stored larger than ``resolution`` (``max_resolution``: a cap; default: the data's
        stored size), the input size is searched in steps from ``resolution`` up to it
        (:func:`resolution_steps`): the proxy decodes the images once at the largest and trains each candidate at
        its own."""
        space = _new_space(given, fit_width, max_resolution)
        resolution = int(given.get("resolution", DEFAULTS["resolution"]))
        given = {**given, "space": space.to_dict()}
        if MnasNetSpace(space).searches_resolution and "proxy_resolution" not in given:
            given = {**given, "proxy_resolution": max(space.resolutions)}
        elif MnasNetSpace(space).searches_strides and "resolution" in given and "proxy_resolution" not in given:
            given = {**given, "proxy_resolution": resolution}
        if given.get("finalists") is None:
            built_in = is_built_in(str(given.get("data", DEFAULTS["data"])))
            given = {**given, "finalists": 0 if built_in else FINALISTS_ON_REAL_DATA}
        return cls.of(**given)

    def warnings(self) -> list[str]:
        """Values that are allowed but probably not meant, as ``warning:`` lines: a learning rate far above the
        optimizer's default (the proxy training diverges and every candidate fails), ``--w`` with the hard
        reward (which does not use it)."""
        out = self.proxy.warnings()
        space, objective = self.search_space(), self.objective
        # (with the size searched, each candidate trains at its own, from images decoded at the largest)
        if space.searches_strides and not space.searches_resolution and self.proxy.resolution != objective.resolution:
            out.append(f"warning: the space searches the downsampling, but the proxy trains at "
                       f"{self.proxy.resolution} px and the networks run at {objective.resolution} px "
                       f"(--resolution): the strides are chosen for {self.proxy.resolution} px; give --resolution "
                       f"as your images' size")
        if objective.reward == "hard" and objective.w != DEFAULTS["w"]:
            out.append(f"warning: --w {objective.w:g} is not used by the hard reward (exponent 0 under the target, "
                       f"-1 over it)")
        return out

    def with_counted_target(self, num_classes: int) -> "SearchConfig":
        """This configuration with a target given as a reference network's name (``b0``) made a number
        (:meth:`Objective.counted`)."""
        return dataclasses.replace(self, objective=self.objective.counted(num_classes))

    # -- the parts of the configuration that other modules use
    @property
    def fit_flops(self) -> float | None:
        """The FLOPs every network's widths are fitted to (a space with ``fit_width``, a FLOPs target and no
        latency target or table): the target, or the window's top when that is below it; None: not fitted."""
        objective = self.objective
        if not self.space.fit_width or not objective.target_flops or objective.target_latency_ms \
                or objective.latency_table:
            return None
        if isinstance(objective.target_flops, str):
            raise ValueError(f"target {objective.target_flops!r} not counted yet (with_counted_target)")
        return float(objective.target_flops) * min(1.0, objective.window[1])

    def decoder(self, num_classes: int, space: MnasNetSpace | None = None) -> CandidateDecoder:
        """How this run's choices become networks (``num_classes``: the data's, unless the run sets its own;
        ``space``: the run's space when the caller holds it already, else built from ``self.space``)."""
        objective = self.objective
        return CandidateDecoder(space or self.search_space(), objective.resolution,
                                objective.num_classes or num_classes, self.fit_flops)

    def sizing(self, num_classes: int) -> Sizing:
        """What the ``levels`` start points are sized to: the FLOPs target and window at ``resolution``, with the
        run's class count (``num_classes`` unless given)."""
        objective = self.objective
        return Sizing(objective.target_flops, objective.window, objective.resolution,
                      objective.num_classes or num_classes)

    def search_space(self) -> MnasNetSpace:
        """The space this search proposes from and its records decode with."""
        return MnasNetSpace(self.space)

    # -- files
    def to_dict(self) -> dict[str, Any]:
        """The flat settings (search.json's ``config``): every setting by its flat name."""
        out: dict[str, Any] = {}
        for name, (part, own) in FLAT_NAMES.items():
            holder = self if part == "" else getattr(self, part)
            out[name] = self.space.to_dict() if name == "space" else getattr(holder, own)
        return copy.deepcopy({name: out[name] for name in FILE_ORDER})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "SearchConfig":
        """From ``search.json``'s ``config``; keys of older versions that no longer exist are ignored."""
        if "flops_window" in values:  # its name before it screened latency too
            values = {"window": values["flops_window"], **values}
        values = {k: v for k, v in values.items() if k in FLAT_NAMES}
        values.setdefault("optimizer", "sgd")  # runs from before the choice trained with SGD
        values.setdefault("start_from", ())  # runs from before start points started from none
        values.setdefault("space", mnasnet_paper_config().to_dict())  # runs from before the space was saved
        values.setdefault("proxy_width", ProxySettings.width)  # runs from before the narrow proxy: full width
        values.setdefault("finalists", 0)  # runs from before the final stage: the proxy's winner
        return cls.of(**values)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Flat setting -> default, for the command line's help and for the values the user did not give."""
        return dict(DEFAULTS)


PARTS: dict[str, Any] = {"objective": Objective, "proxy": ProxySettings, "resources": TrialResources,
                         "final_stage": FinalStage}
# each part's default in a search: SearchConfig's field default (its proxy is narrow: SEARCH_PROXY_WIDTH)
PART_DEFAULTS = {f.name: f.default for f in fields(SearchConfig)
                 if f.name in PARTS and f.default is not dataclasses.MISSING}
# the flat names that are not their field's name in the part (the part's own name would be ambiguous)
_RENAMED = {("proxy", own): flat for own, flat in PROXY_FLAT_NAMES.items()} | {("final_stage", "epochs"):
                                                                                    "finalist_epochs"}


def _flat_names() -> dict[str, tuple[str, str]]:
    names = {}
    for part, kind in PARTS.items():
        for f in fields(kind):
            names[_RENAMED.get((part, f.name), f.name)] = (part, f.name)
    for f in fields(SearchConfig):
        if f.name not in PARTS:
            names[f.name] = ("", f.name)
    return names


def _defaults() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, (part, own) in FLAT_NAMES.items():
        if part in PART_DEFAULTS:
            default = getattr(PART_DEFAULTS[part], own)
        else:
            default = next(f for f in fields(PARTS.get(part, SearchConfig)) if f.name == own).default
        if default is not dataclasses.MISSING and name not in ("target_flops", "out"):  # given for each run
            values[name] = default
    return values


# search.json's order of the settings, as it has always been written
FILE_ORDER = ("target_flops", "out", "controller", "trials", "epochs", "steps", "batch_size", "optimizer", "lr",
              "data", "val_fraction", "proxy_resolution", "proxy_width", "resolution", "num_classes", "reward", "w",
              "seed", "address", "gpus_per_trial", "cpus_per_trial", "concurrency", "cache", "no_cache", "debug",
              "controller_options", "window", "scheduler", "target_latency_ms", "latency_table", "start_from",
              "space", "finalists", "finalist_epochs")
FLAT_NAMES.update(_flat_names())
assert set(FILE_ORDER) == set(FLAT_NAMES), "every flat setting has its place in search.json"
DEFAULTS = _defaults()
