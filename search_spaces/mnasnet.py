"""MnasNet's factorized hierarchical search space over a MobileNetV2 reference skeleton.

The network is split into blocks; each block chooses its own conv op, kernel, squeeze-and-excitation,
skip, output filters (a multiple of the reference) and layer count (reference + delta); the layers inside a
block repeat the same choice. Stem and head stay those of the reference; so do the strides, unless
``reduction_strides`` offers more than 2: then the stem and every block that downsamples in the skeleton
choose their stride too (1 keeps the resolution), so a network for small images can keep larger maps.

Two options make every network of a space land at a budget (``fit_width``) and let it choose the size of the
images it runs at (``resolutions``, a decision ``input.resolution`` after the strides). The space only marks
them: a space decodes the networks' shapes (relative widths, depths, strides, resolution), and the search fits
each one's widths to its target (``nas.network.scaling.fit_width``), since a budget belongs to a run, not to a
space.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from search_spaces import SPACES
from search_spaces.ops import op_named
from search_spaces.spec import MAX_RESOLUTION, MIN_RESOLUTION, ArchSpec, BlockSpec
from search_spaces.space import CategoricalSpace, SpaceError

MNASNET_OPS = ("conv", "dsconv", "mbconv3", "mbconv6")  # MnasNet's conv ops (names of search_spaces/ops.py)
DECISIONS = ("op", "kernel", "se", "skip", "filters", "layers")
RESOLUTION_DECISION = "input.resolution"  # the last decision of a space that searches the input size
SPACE_FORMAT = "nas-space/1"  # a space file: this format, its fingerprint, and MnasNetConfig's fields


def nearest_multiple(channels: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` (halves up), at least ``divisor``."""
    return max(divisor, int(channels / divisor + 0.5) * divisor)


@dataclass(frozen=True)
class Skeleton:
    """The reference network the space is built around (MobileNetV2 by default)."""

    channels: list[int] = field(default_factory=lambda: [16, 24, 32, 64, 96, 160, 320])
    layers: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 3, 3, 1])
    strides: list[int] = field(default_factory=lambda: [1, 2, 2, 2, 1, 2, 1])
    stem: int = 32
    head: int = 1280

    def __post_init__(self) -> None:
        if not (len(self.channels) == len(self.layers) == len(self.strides)) or not self.channels:
            raise SpaceError("skeleton: channels, layers and strides need the same non-zero length")
        if any(s not in (1, 2) for s in self.strides):
            raise SpaceError(f"skeleton.strides: {self.strides} must be 1 or 2")
        if any(c < 1 for c in self.channels) or any(n < 1 for n in self.layers) or self.stem < 1 or self.head < 1:
            raise SpaceError("skeleton: channels, layers, stem and head must be positive")


@dataclass(frozen=True)
class MnasNetConfig:
    """Choices of each decision, the skeleton, and the fixed training-time fields of decoded specs."""

    skeleton: Skeleton = field(default_factory=Skeleton)
    ops: list[str] = field(default_factory=lambda: list(MNASNET_OPS))
    kernels: list[int] = field(default_factory=lambda: [3, 5])
    se_ratios: list[float] = field(default_factory=lambda: [0.0, 0.25])
    skips: list[bool] = field(default_factory=lambda: [True, False])
    filter_multipliers: list[float] = field(default_factory=lambda: [0.75, 1.0, 1.25])
    layer_deltas: list[int] = field(default_factory=lambda: [-1, 0, 1])
    # the stride choices of the stem and of each block whose skeleton stride is 2: [2] is MnasNet's fixed
    # downsampling (32x); [2, 1] searches it (decisions stem.stride and b<i>.stride, after the blocks' own)
    reduction_strides: list[int] = field(default_factory=lambda: [2])
    # True: a search scales each decoded network's widths (stem, blocks, head) by one factor so that its FLOPs
    # land just under the run's target; the filter multipliers then set the blocks' widths relative to each
    # other. False: MnasNet's space as the paper has it (each network's FLOPs follow from its choices)
    fit_width: bool = False
    # the smallest and largest factor a fitted network's widths may take (saved with the run: they decide what
    # its choices decode to); below x0.25 most layers sit at the 8-channel floor of the rounding
    fit_bounds: list[float] = field(default_factory=lambda: [0.25, 2.0])
    # input sizes the networks may run at (decision input.resolution); [] or one value: the size is the run's
    resolutions: list[int] = field(default_factory=list)
    activation: str = "swish"
    dropout: float = 0.2
    drop_connect: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.skeleton, dict):
            object.__setattr__(self, "skeleton", Skeleton(**self.skeleton))
        unknown = [op for op in self.ops if op_named(op) is None]
        if unknown:
            raise SpaceError(f"ops: {unknown[0]!r} is not one of {', '.join(MNASNET_OPS)} (or mbconvN)")
        for name in ("ops", "kernels", "se_ratios", "skips", "filter_multipliers", "layer_deltas",
                     "reduction_strides"):
            if not getattr(self, name):
                raise SpaceError(f"{name}: needs at least one choice")
        if any(s not in (1, 2) for s in self.reduction_strides) or len(set(self.reduction_strides)) != len(
                self.reduction_strides):
            raise SpaceError(f"reduction_strides: {self.reduction_strides} must be distinct values of 1 and 2")
        object.__setattr__(self, "resolutions", [int(r) for r in self.resolutions])
        if any(r < MIN_RESOLUTION or r > MAX_RESOLUTION for r in self.resolutions) or len(set(
                self.resolutions)) != len(self.resolutions):
            raise SpaceError(f"resolutions: {self.resolutions} must be distinct sizes of {MIN_RESOLUTION} to "
                             f"{MAX_RESOLUTION} px")
        object.__setattr__(self, "resolutions", sorted(self.resolutions))
        if not isinstance(self.fit_width, bool):
            raise SpaceError(f"fit_width: {self.fit_width!r} must be true or false")
        object.__setattr__(self, "fit_bounds", [float(b) for b in self.fit_bounds])
        if len(self.fit_bounds) != 2 or not 0.05 <= self.fit_bounds[0] <= self.fit_bounds[1] <= 8:
            raise SpaceError(f"fit_bounds: {self.fit_bounds} must be [low, high] with 0.05 <= low <= high <= 8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "space") -> "MnasNetConfig":
        """A config from a space file's object: any subset of the fields (the rest MnasNet's), ``skeleton`` as an
        object; ``format`` and ``fingerprint``, when present, are checked. SpaceError names what is wrong."""
        if not isinstance(data, dict):
            raise SpaceError(f"{where}: expected a JSON object of space fields, got {type(data).__name__}")
        data = dict(data)
        fmt, fingerprint = data.pop("format", SPACE_FORMAT), data.pop("fingerprint", None)
        if fmt != SPACE_FORMAT:
            raise SpaceError(f"{where}: format {fmt!r} is not {SPACE_FORMAT!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpaceError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        try:
            config = cls(**data)
        except TypeError as exc:
            raise SpaceError(f"{where}: {exc}") from None
        if fingerprint is not None and fingerprint != config.fingerprint():
            raise SpaceError(f"{where}: fingerprint {fingerprint} does not match its fields ({config.fingerprint()}); "
                             f"remove the fingerprint after editing a space file")
        return config

    @classmethod
    def from_json(cls, path: str | Path) -> "MnasNetConfig":
        """Read a space file (JSON): see :meth:`from_dict`."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise SpaceError(f"{path}: no such space file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpaceError(f"{path}: cannot read it ({exc})") from None
        except json.JSONDecodeError as exc:
            raise SpaceError(f"{path}: not valid JSON ({exc})") from None
        config = cls.from_dict(data, where=str(path))
        MnasNetSpace(config)  # every decoded network is a valid spec: checked at its extreme choices
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        """A short hash of the whole configuration: what a run, a latency table or a cache entry was made with."""
        values = self.to_dict()
        for name, before in (("reduction_strides", [2]), ("fit_width", False), ("resolutions", [])):
            if values[name] == before:  # as before the field existed: older tables and runs still match
                del values[name]
        if not self.fit_width:  # the bounds of a fit decide nothing in a space that does not fit
            del values["fit_bounds"]
        text = json.dumps(values, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_file(self) -> dict[str, Any]:
        """The space file's object: format, fingerprint, then every field."""
        return {"format": SPACE_FORMAT, "fingerprint": self.fingerprint(), **self.to_dict()}


def mnasnet_paper_config() -> MnasNetConfig:
    """MnasNet's space as the paper has it (MobileNetV2 skeleton, fixed strides): the space of every run made
    before runs recorded their space, so it must not change when the default space does."""
    return MnasNetConfig()


class MnasNetSpace(CategoricalSpace):
    """The factorized hierarchical space: ``len(skeleton)`` blocks x 6 decisions each."""

    def __init__(self, config: MnasNetConfig | None = None) -> None:
        self.config = config or MnasNetConfig()
        c = self.config
        decisions: list[tuple[str, Sequence[Any]]] = []
        for b in range(len(c.skeleton.channels)):
            decisions += [(f"b{b}.op", c.ops), (f"b{b}.kernel", c.kernels), (f"b{b}.se", c.se_ratios),
                          (f"b{b}.skip", c.skips), (f"b{b}.filters", c.filter_multipliers),
                          (f"b{b}.layers", c.layer_deltas)]
        if self.searches_strides:
            decisions += [("stem.stride", c.reduction_strides)]
            decisions += [(f"b{b}.stride", c.reduction_strides) for b in self.reduction_blocks]
        if self.searches_resolution:
            decisions += [(RESOLUTION_DECISION, c.resolutions)]
        super().__init__(decisions)
        self._check_extremes()

    def _check_extremes(self) -> None:
        """SpaceError unless the smallest and the largest choices decode to valid specs (kernels, channels)."""
        for choices in ([0] * len(self), [n - 1 for n in self.sizes]):
            try:
                self.decode(choices)
            except ValueError as exc:
                raise SpaceError(f"space: {exc}") from None

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint()

    @property
    def num_blocks(self) -> int:
        return len(self.config.skeleton.channels)

    @property
    def searches_strides(self) -> bool:
        """Whether the stem's and the reducing blocks' strides are decisions (``reduction_strides``)."""
        return len(self.config.reduction_strides) > 1

    @property
    def searches_resolution(self) -> bool:
        """Whether the input size is a decision (``resolutions`` offers more than one)."""
        return len(self.config.resolutions) > 1

    @property
    def fits_width(self) -> bool:
        """Whether a search fits each network's widths to its budget (``fit_width``)."""
        return self.config.fit_width

    def resolution_of(self, choices: Sequence[int], default: int = 224) -> int:
        """The input size ``choices`` run at: the chosen one, the space's only one, else ``default``."""
        sizes = self.config.resolutions
        if self.searches_resolution:
            return sizes[self.validate(choices)[-1]]
        return sizes[0] if sizes else default

    @property
    def reduction_blocks(self) -> list[int]:
        """The blocks whose skeleton stride is 2: those that may keep the resolution when strides are searched."""
        return [b for b, stride in enumerate(self.config.skeleton.strides) if stride == 2]

    @property
    def stride_decisions(self) -> dict[int, int]:
        """Position (-1: the stem, else a reducing block) -> the index of its stride decision; empty when strides
        are not searched. They follow the blocks' own decisions, the stem's first."""
        if not self.searches_strides:
            return {}
        first = len(DECISIONS) * self.num_blocks
        return {position: first + i for i, position in enumerate([-1] + self.reduction_blocks)}

    def strides(self, choices: Sequence[int]) -> tuple[int, list[int]]:
        """The stem's stride and each block's: the skeleton's (stem 2), or the chosen ones."""
        sk, c = self.config.skeleton, self.config
        if not self.searches_strides:
            return c.reduction_strides[0], [s if s == 1 else c.reduction_strides[0] for s in sk.strides]
        choices = self.validate(choices)
        picked = {position: c.reduction_strides[choices[index]] for position, index in self.stride_decisions.items()}
        return picked.pop(-1), [picked.get(b, stride) for b, stride in enumerate(sk.strides)]

    def _block_values(self, choices: Sequence[int]) -> list[dict[str, Any]]:
        values = list(self.values(choices).values())
        return [dict(zip(DECISIONS, values[6 * b: 6 * b + 6])) for b in range(self.num_blocks)]

    def decode(self, choices: Sequence[int], resolution: int = 224, num_classes: int = 1000,
               name: str = "mnasnet-space") -> ArchSpec:
        """The ArchSpec the choices describe, at ``resolution`` unless the space sets the size (its
        ``resolutions``). In a space that fits widths this is the network's shape before its fit."""
        sk = self.config.skeleton
        resolution = self.resolution_of(choices, resolution)
        stem_stride, strides = self.strides(choices)
        blocks, cin = [], sk.stem
        for b, v in enumerate(self._block_values(choices)):
            op, expand = op_named(v["op"])
            cout = nearest_multiple(sk.channels[b] * v["filters"])
            blocks.append(BlockSpec(op=op, repeats=max(1, sk.layers[b] + v["layers"]), kernel=v["kernel"],
                                    stride=strides[b], expand=expand, in_channels=cin, out_channels=cout,
                                    se=float(v["se"]), skip=bool(v["skip"])))
            cin = cout
        return ArchSpec(name=name, resolution=resolution, num_classes=num_classes, stem_channels=sk.stem,
                        head_channels=sk.head, activation=self.config.activation, dropout=self.config.dropout,
                        drop_connect=self.config.drop_connect, blocks=tuple(blocks), stem_stride=stem_stride)

    def encode(self, spec: ArchSpec) -> list[int]:
        """The choices that decode to ``spec``'s architecture, or SpaceError saying why it is outside.

        Only the architecture is compared: name, resolution, classes, activation and regularization are not.
        """
        sk = self.config.skeleton
        if len(spec.blocks) != self.num_blocks:
            raise SpaceError(f"{spec.name}: {len(spec.blocks)} blocks, the space has {self.num_blocks}")
        if spec.stem_channels != sk.stem or spec.head_channels != sk.head:
            raise SpaceError(f"{spec.name}: stem/head {spec.stem_channels}/{spec.head_channels}, "
                             f"the space has {sk.stem}/{sk.head}")
        c = self.config
        choices: list[int] = []
        for b, block in enumerate(spec.blocks):
            where = f"{spec.name}: block {b} ({block.to_string()})"
            op_name = next((n for n in c.ops if op_named(n) == (block.op, block.expand)), None)
            if op_name is None:
                raise SpaceError(f"{where}: op {block.op} with expand {block.expand} is not a choice")
            filters = [m for m in c.filter_multipliers if nearest_multiple(sk.channels[b] * m) == block.out_channels]
            if not filters:
                allowed = sorted({nearest_multiple(sk.channels[b] * m) for m in c.filter_multipliers})
                raise SpaceError(f"{where}: {block.out_channels} output filters, the space allows {allowed}")
            deltas = [d for d in c.layer_deltas if max(1, sk.layers[b] + d) == block.repeats]
            if not deltas:
                raise SpaceError(f"{where}: {block.repeats} layers is not reference {sk.layers[b]} + "
                                 f"{c.layer_deltas}")
            for values, value, label in ((c.kernels, block.kernel, "kernel"), (c.se_ratios, block.se, "SE ratio"),
                                         (c.skips, block.skip, "skip")):
                if value not in values:
                    raise SpaceError(f"{where}: {label} {value} is not one of {values}")
            choices += [c.ops.index(op_name), c.kernels.index(block.kernel), c.se_ratios.index(block.se),
                        c.skips.index(block.skip), c.filter_multipliers.index(filters[0]),
                        c.layer_deltas.index(deltas[0])]
        return choices + self._stride_choices(spec) + self._resolution_choice(spec, exact=True)

    def _resolution_choice(self, spec: ArchSpec, exact: bool) -> list[int]:
        """The resolution decision's choice of ``spec`` (none when the size is not searched): its own size, or
        (not ``exact``) the nearest; SpaceError when ``exact`` and the size is not a choice."""
        if not self.searches_resolution:
            return []
        sizes = self.config.resolutions
        if spec.resolution in sizes:
            return [sizes.index(spec.resolution)]
        if exact:
            raise SpaceError(f"{spec.name}: resolution {spec.resolution} px is not one of {sizes}")
        return [min(range(len(sizes)), key=lambda i: (abs(sizes[i] - spec.resolution), i))]

    def _stride_choices(self, spec: ArchSpec) -> list[int]:
        """The stride decisions' choices of ``spec`` (none when strides are not searched); SpaceError when its
        stem's or a block's stride is not one the space can give there."""
        sk, allowed = self.config.skeleton, self.config.reduction_strides
        positions = [("stem", spec.stem_stride, True)] + [
            (f"block {b}", block.stride, sk.strides[b] == 2) for b, block in enumerate(spec.blocks)]
        for where, stride, reduces in positions:
            options = allowed if reduces else [1]
            if stride not in options:
                raise SpaceError(f"{spec.name}: {where} has stride {stride}, the space allows {options} there "
                                 f"(skeleton strides {sk.strides}, stem 2, reduction_strides {allowed})")
        if not self.searches_strides:
            return []
        return [allowed.index(stride) for _, stride, reduces in positions if reduces]

    def nearest(self, spec: ArchSpec) -> list[int]:
        """The choices of the architecture in the space closest to ``spec``, block by block: the same op family
        with the nearest expand ratio, the nearest kernel, SE ratio, filter count and layer count; the skip as
        given where it is a choice. ``encode(spec)`` when the spec lies inside the space; SpaceError when its
        block count or strides are not the space's (no block of the space corresponds then)."""
        sk, c = self.config.skeleton, self.config
        if len(spec.blocks) != self.num_blocks:
            raise SpaceError(f"{spec.name}: {len(spec.blocks)} blocks, the space has {self.num_blocks}")
        stride_choices = self._stride_choices(spec)

        def closest(values: Sequence[Any], distance: Any) -> int:
            return min(range(len(values)), key=lambda i: (distance(values[i]), i))

        choices: list[int] = []
        for b, block in enumerate(spec.blocks):
            same_family = [n for n in c.ops if op_named(n)[0] == block.op] or list(c.ops)
            op = min(same_family, key=lambda n: abs(op_named(n)[1] - block.expand))
            choices += [c.ops.index(op),
                        closest(c.kernels, lambda k: abs(k - block.kernel)),
                        closest(c.se_ratios, lambda r: abs(r - block.se)),
                        c.skips.index(block.skip) if block.skip in c.skips else 0,
                        closest(c.filter_multipliers,
                                lambda m: abs(nearest_multiple(sk.channels[b] * m) - block.out_channels)),
                        closest(c.layer_deltas, lambda d: abs(max(1, sk.layers[b] + d) - block.repeats))]
        return choices + stride_choices + self._resolution_choice(spec, exact=False)

    def contains(self, spec: ArchSpec) -> bool:
        """Whether the spec's architecture lies inside the space."""
        try:
            self.encode(spec)
        except SpaceError:
            return False
        return True

    def overview(self) -> str:
        """One line on the space: its kind, size and fingerprint, for the console and the report."""
        kind = ("downsampling searched: the stem and each reducing block choose stride 2 or 1"
                if self.searches_strides else f"{2 ** (1 + len(self.reduction_blocks))}x downsampling, fixed")
        if self.searches_resolution:
            kind += f"; input size searched: {', '.join(map(str, self.config.resolutions))} px"
        if self.fits_width:
            kind += "; every network's width fitted to the budget"
        return (f"{kind}; {len(self)} decisions over {self.num_blocks} blocks, {self.size:.3g} architectures "
                f"(space {self.fingerprint})")

    def summary(self, choices: Sequence[int]) -> str:
        """A short architecture summary, one token per block, e.g. ``M6k5se·40x3/2`` (``search_spaces.spec.NOTATION``)."""
        return self.decode(choices).notation()


def default_space() -> MnasNetSpace:
    """The default space of a new search: MnasNet's over the MobileNetV2 skeleton (7 blocks x 6 decisions)."""
    return MnasNetSpace()


SMALL_IMAGES_PX = 64  # at this resolution and below, a new search's default space also searches the downsampling


def default_space_for(resolution: int | None) -> MnasNetSpace:
    """The default space of a new search whose networks run at ``resolution``: MnasNet's (32x downsampling,
    made for 224 px photos), or for images of ``SMALL_IMAGES_PX`` and less the ``downsampling`` space, where
    32x would leave the last blocks 1x1 to 2x2 maps (measured at 32 px: docs/results-real-data.md)."""
    if resolution is not None and resolution <= SMALL_IMAGES_PX:
        return space_named("downsampling")
    return default_space()


def space_named(name: str) -> MnasNetSpace:
    """The space a ``--space`` value names: a shipped space (``mnasnet``, ``downsampling``: search_spaces/spaces)
    or a space file; SpaceError when neither, naming the shipped ones."""
    path = str(SPACES / f"{name}.json") if not os.path.exists(name) and (SPACES / f"{name}.json").is_file() else name
    try:
        return MnasNetSpace(MnasNetConfig.from_json(path))
    except SpaceError as exc:
        if "no such space file" not in str(exc):
            raise
        shipped = ", ".join(sorted(p.stem for p in SPACES.glob("*.json")))
        raise SpaceError(f"{exc} (or a shipped space: {shipped})") from None


def space_from_dict(data: dict[str, Any] | None, where: str = "space") -> MnasNetSpace:
    """The space a saved configuration describes (a run's ``search.json``); None: MnasNet's paper space, which
    every run made before runs recorded their space used."""
    return MnasNetSpace(mnasnet_paper_config() if data is None else MnasNetConfig.from_dict(data, where))
