"""The B0 spec (``nas-b0-spec/1``): a JSON description of one network.

``blocks`` is the source of truth; ``block_strings`` (EfficientNet grammar) and ``timm_arch_def`` (timm's
grammar) are derived from it on save and checked against it on load. See ``shared/DESIGN.md``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from search_spaces.errors import UserInputError
from search_spaces.ops import LAYER_KINDS, MARKERS, kind_of

SPEC_FORMAT = "nas-b0-spec/1"
# a spec whose stem does not downsample (stem_stride 1) is written as /2 with the field, so that a reader that
# knows only /1 (which builds a stride-2 stem) refuses it instead of building another network; /1 is still
# written for every stride-2 stem
SPEC_FORMAT_STEM = "nas-b0-spec/2"
OPS = tuple(LAYER_KINDS)  # the spec's ops: the op table's kinds (search_spaces/ops.py)
MIN_RESOLUTION = 8  # the smallest input size a spec, a proxy or a FLOPs count accepts
# bounds that keep every count and build of a spec to seconds (EfficientNet-L2: 800 px, ~5,500 channels,
# ~90 layers); a spec beyond them is a user error, not minutes of work
MAX_RESOLUTION = 4096
MAX_CHANNELS = 65536
MAX_LAYERS = 2000
MAX_CLASSES = 100_000  # ImageNet-21k has 21,841
ACTIVATIONS = ("swish", "relu", "relu6")
KERNELS = (1, 3, 5, 7, 9)
STRIDES = (1, 2)


class SpecError(UserInputError):
    """An invalid B0 spec; the message names the offending field and value."""


NOTATION = ("architecture notation, one token per block, e.g. M6k5se·40x3/2: M6 = MBConv with expansion 6 "
            "(M3: expansion 3, D: depthwise-separable, C: regular conv), k5 = 5x5 kernel, se = squeeze-and-"
            "excitation, n = no skip connection, ·40x3 = 40 output channels, 3 layers, /2 = the block halves the "
            "resolution; a first token stem/1: the stem keeps the input's resolution (otherwise it halves it)")


@dataclass(frozen=True)
class BlockSpec:
    """One block: ``repeats`` identical layers; only the first has ``stride`` and ``in_channels``."""

    op: str
    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int
    se: float = 0.0
    skip: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "repeats": self.repeats, "kernel": self.kernel, "stride": self.stride,
                "expand": self.expand, "in": self.in_channels, "out": self.out_channels,
                "se": self.se, "skip": self.skip}

    def notation(self) -> str:
        """The block's short token (NOTATION), e.g. ``M6k5se·40x3/2``."""
        op = kind_of(self.op).token(self.expand)
        options = ("se" if self.se else "") + ("" if self.skip else "n")
        return f"{op}k{self.kernel}{options}·{self.out_channels}x{self.repeats}" + ("/2" if self.stride == 2 else "")

    def to_string(self) -> str:
        """EfficientNet block string, e.g. ``r2_k3_s22_e6_i16_o24_se0.25``; an op's marker (``_conv``: a regular
        conv) follows the options."""
        text = (f"r{self.repeats}_k{self.kernel}_s{self.stride}{self.stride}_e{self.expand}"
                f"_i{self.in_channels}_o{self.out_channels}")
        if self.se > 0:
            text += f"_se{self.se:g}"
        if not self.skip:
            text += "_noskip"
        marker = kind_of(self.op).marker
        return text + (f"_{marker}" if marker else "")

    def to_timm(self) -> str | None:
        """timm ``arch_def`` string, or None where timm has no equivalent (a regular conv with SE)."""
        return kind_of(self.op).timm(self)

    def layers(self) -> list["LayerSpec"]:
        """The block expanded into its layers: only the first has ``stride`` and ``in_channels``; a layer gets
        an identity residual where ``skip`` is set and it keeps its input's shape."""
        out = []
        for index in range(self.repeats):
            stride = self.stride if index == 0 else 1
            cin = self.in_channels if index == 0 else self.out_channels
            out.append(LayerSpec(self.op, self.kernel, stride, self.expand, cin, self.out_channels, self.se,
                                 self.skip and stride == 1 and cin == self.out_channels))
        return out


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a block, as the model builder builds it and the analytic counter counts it."""

    op: str
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int
    se: float
    residual: bool


_BLOCK_RE = re.compile(r"^r(\d+)_k(\d+)_s(\d)(\d)_e(\d+)_i(\d+)_o(\d+)((?:_[a-z]+[0-9.]*)*)$")


def parse_block_string(text: str) -> BlockSpec:
    """Decode an EfficientNet block string (``r1_k3_s11_e1_i32_o16_se0.25[_noskip][_conv]``)."""
    match = _BLOCK_RE.match(text.strip())
    if not match:
        raise SpecError(f"block string {text!r}: expected r<R>_k<K>_s<S><S>_e<E>_i<IN>_o<OUT>[_se<R>][_noskip]")
    r, k, s1, s2, e, cin, cout, rest = match.groups()
    if s1 != s2:
        raise SpecError(f"block string {text!r}: unequal strides s{s1}{s2} are not supported")
    se, skip, op = 0.0, True, "mbconv"
    for option in filter(None, rest.split("_")):
        if option.startswith("se"):
            try:
                se = float(option[2:])
            except ValueError:
                raise SpecError(f"block string {text!r}: bad SE ratio {option!r}") from None
        elif option == "noskip":
            skip = False
        elif option in MARKERS:
            op = MARKERS[option]
        else:
            raise SpecError(f"block string {text!r}: unknown option {option!r}")
    block = BlockSpec(op, int(r), int(k), int(s1), int(e), int(cin), int(cout), se, skip)
    _check_block(block, f"block string {text!r}")
    return block


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: stem conv, the blocks, a 1x1 head conv, global pool, dropout, classifier."""

    name: str
    resolution: int
    num_classes: int
    stem_channels: int
    head_channels: int
    activation: str
    dropout: float
    drop_connect: float
    blocks: tuple[BlockSpec, ...]
    metrics: dict[str, Any] = field(default_factory=dict, compare=False)
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)
    stem_stride: int = 2  # the stem conv's stride: 2 as in EfficientNet, 1 keeps the input's resolution

    def __post_init__(self) -> None:
        validate_spec(self)

    def notation(self) -> str:
        """The short summary of the console, trials.csv and nas-profile (NOTATION): one token per block, the
        stem first when it keeps the resolution."""
        return " ".join((["stem/1"] if self.stem_stride == 1 else []) + [b.notation() for b in self.blocks])

    @property
    def downsampling(self) -> int:
        """How many times the network shrinks its input (32 for EfficientNet-B0)."""
        return self.stem_stride * math.prod(b.stride for b in self.blocks)

    @property
    def block_strings(self) -> list[str]:
        return [b.to_string() for b in self.blocks]

    @property
    def timm_arch_def(self) -> list[list[str]] | None:
        """timm's ``arch_def`` (one stage per block), or None when a block has no timm equivalent."""
        strings = [b.to_timm() for b in self.blocks]
        if any(s is None for s in strings):
            return None
        return [[s] for s in strings]  # type: ignore[misc]

    @property
    def num_layers(self) -> int:
        return sum(b.repeats for b in self.blocks)

    def replace(self, **changes: Any) -> "ArchSpec":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        stem = {} if self.stem_stride == 2 else {"stem_stride": self.stem_stride}
        return {
            "format": SPEC_FORMAT if self.stem_stride == 2 else SPEC_FORMAT_STEM,
            "name": self.name,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            **stem,
            "stem_channels": self.stem_channels,
            "head_channels": self.head_channels,
            "activation": self.activation,
            "dropout": self.dropout,
            "drop_connect": self.drop_connect,
            "blocks": [b.to_dict() for b in self.blocks],
            "block_strings": self.block_strings,
            "timm_arch_def": self.timm_arch_def,
            "metrics": dict(self.metrics),
            "provenance": dict(self.provenance),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_block(b: BlockSpec, where: str) -> None:
    if b.op not in OPS:
        raise SpecError(f"{where}.op: {b.op!r} is not one of {', '.join(OPS)}")
    for name in ("repeats", "expand", "in_channels", "out_channels"):
        value = getattr(b, name)
        key = {"in_channels": "in", "out_channels": "out"}.get(name, name)
        if not _is_int(value) or value < 1:
            raise SpecError(f"{where}.{key}: {value!r} is not a positive integer")
    if not _is_int(b.kernel) or b.kernel not in KERNELS:
        raise SpecError(f"{where}.kernel: {b.kernel!r} is not one of {', '.join(map(str, KERNELS))}")
    if not _is_int(b.stride) or b.stride not in STRIDES:
        raise SpecError(f"{where}.stride: {b.stride!r} is not 1 or 2")
    if not kind_of(b.op).expands and b.expand != 1:
        raise SpecError(f"{where}.expand: {b.expand!r} must be 1 for op {b.op!r}")
    if not _is_number(b.se) or not 0 <= b.se <= 1:
        raise SpecError(f"{where}.se: {b.se!r} is not a ratio between 0 and 1")
    if not isinstance(b.skip, bool):
        raise SpecError(f"{where}.skip: {b.skip!r} is not true or false")


def validate_spec(spec: ArchSpec) -> None:
    """Raise SpecError naming the first invalid field of ``spec``."""
    if not isinstance(spec.name, str) or not spec.name:
        raise SpecError(f"name: {spec.name!r} is not a non-empty string")
    for key in ("resolution", "num_classes", "stem_channels", "head_channels"):
        value = getattr(spec, key)
        if not _is_int(value) or value < 1:
            raise SpecError(f"{key}: {value!r} is not a positive integer")
    if spec.resolution < MIN_RESOLUTION:
        raise SpecError(f"resolution: {spec.resolution} is too small (at least {MIN_RESOLUTION})")
    if spec.resolution > MAX_RESOLUTION:
        raise SpecError(f"resolution: {spec.resolution:,} is too large (at most {MAX_RESOLUTION})")
    if spec.num_classes > MAX_CLASSES:
        raise SpecError(f"num_classes: {spec.num_classes:,} is too many (at most {MAX_CLASSES:,})")
    for key in ("stem_channels", "head_channels"):
        if getattr(spec, key) > MAX_CHANNELS:
            raise SpecError(f"{key}: {getattr(spec, key):,} is too many (at most {MAX_CHANNELS:,})")
    if spec.stem_stride not in STRIDES or isinstance(spec.stem_stride, bool):
        raise SpecError(f"stem_stride: {spec.stem_stride!r} is not 1 or 2")
    if spec.activation not in ACTIVATIONS:
        raise SpecError(f"activation: {spec.activation!r} is not one of {', '.join(ACTIVATIONS)}")
    for key in ("dropout", "drop_connect"):
        value = getattr(spec, key)
        if not _is_number(value) or not 0 <= value < 1:
            raise SpecError(f"{key}: {value!r} is not a rate in [0, 1)")
    if not isinstance(spec.blocks, tuple) or not spec.blocks:
        raise SpecError("blocks: at least one block is needed")
    previous = spec.stem_channels
    for i, block in enumerate(spec.blocks):
        if not isinstance(block, BlockSpec):
            raise SpecError(f"blocks[{i}]: {block!r} is not a block")
        _check_block(block, f"blocks[{i}]")
        if block.in_channels != previous:
            raise SpecError(f"blocks[{i}].in: {block.in_channels} does not match the previous output "
                            f"channels {previous}")
        if block.out_channels > MAX_CHANNELS:
            raise SpecError(f"blocks[{i}].out: {block.out_channels:,} is too many (at most {MAX_CHANNELS:,})")
        previous = block.out_channels
    layers = sum(block.repeats for block in spec.blocks)
    if layers > MAX_LAYERS:
        raise SpecError(f"blocks: {layers:,} layers in all is too many (at most {MAX_LAYERS:,})")
    if not isinstance(spec.metrics, dict):
        raise SpecError("metrics: must be an object")
    if not isinstance(spec.provenance, dict):
        raise SpecError("provenance: must be an object")


_TOP_FIELDS = ("name", "resolution", "num_classes", "stem_channels", "head_channels", "activation",
               "dropout", "drop_connect", "blocks")
_BLOCK_FIELDS = ("op", "repeats", "kernel", "stride", "expand", "in", "out", "se", "skip")


def _block_from_dict(data: Any, where: str) -> BlockSpec:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where}: expected an object, got {type(data).__name__}")
    for key in _BLOCK_FIELDS:
        if key not in data:
            raise SpecError(f"{where}.{key}: missing")
    unknown = sorted(set(data) - set(_BLOCK_FIELDS))
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown field")
    block = BlockSpec(op=data["op"], repeats=data["repeats"], kernel=data["kernel"], stride=data["stride"],
                      expand=data["expand"], in_channels=data["in"], out_channels=data["out"],
                      se=data["se"], skip=data["skip"])
    _check_block(block, where)
    if isinstance(block.se, int):
        block = replace(block, se=float(block.se))
    return block


def spec_from_dict(data: Mapping[str, Any]) -> ArchSpec:
    """Validate a parsed JSON object and return the ArchSpec it describes."""
    if not isinstance(data, Mapping):
        raise SpecError(f"spec: expected a JSON object, got {type(data).__name__}")
    if data.get("format") not in (SPEC_FORMAT, SPEC_FORMAT_STEM):
        raise SpecError(f"format: {data.get('format')!r} is not {SPEC_FORMAT!r} or {SPEC_FORMAT_STEM!r}")
    if data["format"] == SPEC_FORMAT and "stem_stride" in data:
        raise SpecError(f"stem_stride: only in {SPEC_FORMAT_STEM!r} specs ({SPEC_FORMAT!r} stems have stride 2)")
    for key in _TOP_FIELDS:
        if key not in data:
            raise SpecError(f"{key}: missing")
    if not isinstance(data["blocks"], list):
        raise SpecError("blocks: expected a list")
    blocks = tuple(_block_from_dict(b, f"blocks[{i}]") for i, b in enumerate(data["blocks"]))
    spec = ArchSpec(name=data["name"], resolution=data["resolution"], num_classes=data["num_classes"],
                    stem_channels=data["stem_channels"], head_channels=data["head_channels"],
                    activation=data["activation"], dropout=data["dropout"], drop_connect=data["drop_connect"],
                    blocks=blocks, metrics=dict(data.get("metrics") or {}),
                    provenance=dict(data.get("provenance") or {}), stem_stride=data.get("stem_stride", 2))
    if "block_strings" in data and data["block_strings"] != spec.block_strings:
        raise SpecError(f"block_strings: {data['block_strings']!r} do not match blocks "
                        f"({spec.block_strings!r})")
    if "timm_arch_def" in data and data["timm_arch_def"] != spec.timm_arch_def:
        raise SpecError(f"timm_arch_def: {data['timm_arch_def']!r} does not match blocks")
    return spec


def load_spec(source: str | os.PathLike | Mapping[str, Any] | ArchSpec) -> ArchSpec:
    """Load a B0 spec from a JSON file path, a parsed dict, or pass an ArchSpec through."""
    if isinstance(source, ArchSpec):
        return source
    if isinstance(source, Mapping):
        return spec_from_dict(source)
    path = Path(source)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid JSON ({exc})") from None
    try:
        return spec_from_dict(data)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def spec_from_block_strings(strings: list[str], **fields: Any) -> ArchSpec:
    """Build an ArchSpec from EfficientNet block strings plus the top-level fields."""
    blocks = tuple(parse_block_string(s) for s in strings)
    defaults = dict(name="custom", resolution=224, num_classes=1000, stem_channels=blocks[0].in_channels,
                    head_channels=1280, activation="swish", dropout=0.2, drop_connect=0.2)
    defaults.update(fields)
    return ArchSpec(blocks=blocks, **defaults)


def architecture_hash(spec: ArchSpec, num_classes: int | None = None) -> str:
    """A SHA-256 of what decides a trained network's weights and function: stem, blocks, head, activation,
    classifier width (``num_classes`` overrides the spec's). Not the name, resolution, regularisation, metrics or
    provenance: a checkpoint of the network fits any spec with the same hash."""
    key = {"stem": spec.stem_channels, "blocks": spec.block_strings, "head": spec.head_channels,
           "activation": spec.activation, "num_classes": num_classes or spec.num_classes}
    if spec.stem_stride != 2:  # a stride-2 stem hashes as before the field existed
        key["stem_stride"] = spec.stem_stride
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
