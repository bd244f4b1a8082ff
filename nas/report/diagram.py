"""A network drawn as SVG: stem, one box per block (op, kernel, SE, skip, channels, layers, stride) and head,
with the feature-map size after each part and its share of FLOPs and params."""
from __future__ import annotations

from html import escape

from nas.network.counting import analytic_rows
from search_spaces.ops import kind_of
from search_spaces.spec import ArchSpec, BlockSpec

BOX_W, GAP, BOX_H = 112, 12, 118


def block_op(block: BlockSpec) -> str:
    """The space's name of a block's conv op: conv, dsconv (MBConv expand 1), mbconv3, mbconv6 (mbconvN)."""
    return kind_of(block.op).name(block.expand)


def _lines(block: BlockSpec) -> list[str]:
    return [f"{block_op(block)} {block.kernel}x{block.kernel}",
            f"SE {block.se:g}" if block.se else "no SE",
            "skip" if block.skip else "no skip",
            f"{block.out_channels} ch x{block.repeats}",
            f"stride {block.stride}"]


def _box(x: float, y: float, title: str, lines: list[str], size: int, flops: int, params: int, color: str,
         css: str) -> str:
    text = "".join(f'<text x="{x + 6}" y="{y + 32 + 13 * i}">{escape(line)}</text>' for i, line in enumerate(lines))
    tip = f"{title}: {', '.join(lines)}; {size}x{size} out; {flops / 1e6:.1f}M FLOPs, {params / 1e3:.1f}k params"
    return (f'<g class="{css}"><title>{escape(tip)}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{color}" stroke="#555"/>'
            f'<text x="{x + 6}" y="{y + 16}" font-weight="bold">{escape(title)}</text>{text}'
            f'<text x="{x + 6}" y="{y + BOX_H - 8}" fill="#333">{size}px · {flops / 1e6:.1f}M</text></g>')


def network_svg(spec: ArchSpec, resolution: int | None = None, caption: str = "") -> str:
    """``spec`` as a row of boxes at ``resolution`` (default: its own), with ``caption`` above them.

    Every block is a ``<g class="block">``; stem and head are ``class="part"``. Hovering a box shows its
    FLOPs and params.
    """
    resolution = resolution or spec.resolution
    rows = analytic_rows(spec, resolution)
    parts = len(spec.blocks) + 2
    width, height = parts * (BOX_W + GAP) + GAP, BOX_H + 52
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="network" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<text x="{GAP}" y="16" font-size="13" font-weight="bold">{escape(caption or spec.name)}</text>']
    y = 30
    for index, row in enumerate(rows):
        x = GAP + index * (BOX_W + GAP)
        if index:
            out.append(f'<line x1="{x - GAP}" x2="{x}" y1="{y + BOX_H / 2}" y2="{y + BOX_H / 2}" stroke="#555"/>')
        if index == 0:
            out.append(_box(x, y, "stem", ["conv 3x3", f"{spec.stem_channels} ch", f"stride {spec.stem_stride}", f"in {resolution}px"],
                            row.size, row.flops, row.params, "#eeeeee", "part"))
        elif index == len(rows) - 1:
            out.append(_box(x, y, "head", ["conv 1x1", f"{spec.head_channels} ch", "pool + dropout",
                                           f"{spec.num_classes} classes"], row.size, row.flops, row.params,
                            "#eeeeee", "part"))
        else:
            block = spec.blocks[index - 1]
            out.append(_box(x, y, f"block {index}", _lines(block), row.size, row.flops, row.params,
                            kind_of(block.op).color(block.expand), "block"))
    out.append("</svg>")
    return "".join(out)
