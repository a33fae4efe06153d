"""Charts for the report pages as inline SVG strings: no scripts, no images, no third parties."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from html import escape

BAR_FILL = "#2e6f9e"
SECOND_FILL = "#c8553d"
TRACK_FILL = "#e8eef3"
TEXT_FILL = "#1f2933"
MISSING = "–"

FONT_FAMILY = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', sans-serif"
FONT_SIZE = 13
# No font metrics without a browser, so text widths are estimated generously from the
# character count; an over-estimate only costs a little bar length.
CHAR_WIDTH = 0.6 * FONT_SIZE
PAD = 8
GAP = 6

# Characters XML 1.0 forbids even as references: one stray one and the page stops parsing.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: object) -> str:
    return escape(_NOT_XML.sub("", str(value)), quote=True)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _percent(share: float) -> str:
    return f"{int(share * 100 + 0.5)}%"


def _fit(label: str, width: float) -> str:
    """Shorten a label to the estimated width; the <desc> keeps it whole."""
    room = max(1, int(width / CHAR_WIDTH))
    return label if len(label) <= room else label[: room - 1].rstrip() + "…"


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _bar_length(value: float, scale: float, room: float) -> float:
    length = room * value / scale if scale > 0 else 0.0
    # A non-zero figure should never look like nothing at all.
    return max(length, 1.0) if value > 0 else 0.0


class _Canvas:
    """Collects shapes in LTR coordinates and mirrors them when the page reads right to left."""

    def __init__(self, width: int, rtl: bool) -> None:
        self.width = width
        self.rtl = rtl
        self.parts: list[str] = []

    def rect(self, x: float, y: float, w: float, h: float, fill: str, cls: str) -> None:
        if self.rtl:
            x = self.width - x - w
        self.parts.append(
            f'<rect class="{cls}" x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" '
            f'height="{_num(h)}" fill="{fill}"/>'
        )

    def text(self, x: float, y: float, content: str, anchor: str, cls: str) -> None:
        # Anchors are logical (start/end): with direction="rtl" on the root they flip by
        # themselves, so only the coordinate needs mirroring.
        if self.rtl:
            x = self.width - x
        self.parts.append(
            f'<text class="{cls}" x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" '
            f'dominant-baseline="central">{_text(content)}</text>'
        )

    def svg(self, height: float, title: str, desc: str, uid: str) -> str:
        direction = ' direction="rtl"' if self.rtl else ""
        return "".join(
            [
                f'<svg xmlns="http://www.w3.org/2000/svg" role="img" '
                f'aria-labelledby="{uid}-title {uid}-desc" '
                f'viewBox="0 0 {self.width} {_num(height)}" width="100%" '
                f'style="max-width:{self.width}px;height:auto" '
                f'font-family="{_text(FONT_FAMILY)}" font-size="{FONT_SIZE}" '
                f'fill="{TEXT_FILL}"{direction}>',
                f'<title id="{uid}-title">{_text(title)}</title>',
                f'<desc id="{uid}-desc">{_text(desc)}</desc>',
                *self.parts,
                "</svg>",
            ]
        )


def _uid(kind: str, *content: object) -> str:
    # Derived from the content rather than a counter, so the markup is reproducible and
    # two different charts on one page do not share ids.
    digest = hashlib.sha1(repr((kind, content)).encode()).hexdigest()[:10]
    return f"{kind}-{digest}"


def funnel_svg(
    steps: Sequence[tuple[str, int]],
    title: str,
    width: int = 640,
    *,
    rtl: bool = False,
    number: Callable[[int], str] = str,
    percent: Callable[[float], str] = _percent,
    separator: str = "; ",
) -> str:
    """Horizontal bars, one per step; each value is also given as a share of the first step.

    `number`, `percent` and `separator` write the figures and join the description the way
    the page's language does (the report page passes Babel's).
    """
    steps = [(str(label), int(count)) for label, count in steps]
    if any(count < 0 for _, count in steps):
        raise ValueError("funnel counts cannot be negative")
    first = steps[0][1] if steps else 0
    scale = max((count for _, count in steps), default=0)

    def figure(count: int) -> str:
        return f"{number(count)} ({percent(count / first)})" if first else number(count)

    figures = [figure(count) for _, count in steps]
    longest_label = max((len(label) for label, _ in steps), default=0)
    label_w = _clamp(longest_label * CHAR_WIDTH + PAD + GAP, 0.18 * width, 0.42 * width)
    value_w = max((len(f) for f in figures), default=0) * CHAR_WIDTH + GAP
    bar_x = label_w
    room = max(0.0, width - PAD - value_w - bar_x)
    row_h, bar_h = 30, 20

    canvas = _Canvas(width, rtl)
    for i, ((label, count), fig) in enumerate(zip(steps, figures, strict=True)):
        middle = PAD + i * row_h + row_h / 2
        canvas.text(bar_x - GAP, middle, _fit(label, label_w - PAD - GAP), "end", "label")
        canvas.rect(bar_x, middle - bar_h / 2, room, bar_h, TRACK_FILL, "track")
        length = _bar_length(count, scale, room)
        if length:
            canvas.rect(bar_x, middle - bar_h / 2, length, bar_h, BAR_FILL, "bar")
        canvas.text(bar_x + length + GAP, middle, fig, "start", "value")

    desc = separator.join(f"{label}: {fig}" for (label, _), fig in zip(steps, figures, strict=True))
    uid = _uid("funnel", title, steps)
    return canvas.svg(PAD * 2 + len(steps) * row_h, title, desc + ".", uid)


def share_bars_svg(
    rows: Sequence[tuple[str, float | None, float | None]],
    title: str,
    labels: tuple[str, str],
    width: int = 640,
    *,
    rtl: bool = False,
    percent: Callable[[float], str] = _percent,
    separator: str = "; ",
) -> str:
    """Two shares (0..1) per period as a pair of thin bars on a common 0-100 % scale."""
    rows = [(str(period), a, b) for period, a, b in rows]
    fills = (BAR_FILL, SECOND_FILL)

    def figure(share: float | None) -> str:
        return MISSING if share is None else percent(share)

    longest = max((len(period) for period, _, _ in rows), default=0)
    label_w = _clamp(longest * CHAR_WIDTH + PAD + GAP, 0.14 * width, 0.42 * width)
    value_w = len("100%") * CHAR_WIDTH + GAP
    bar_x = label_w
    room = max(0.0, width - PAD - value_w - bar_x)
    legend_h, row_h, bar_h, bar_gap = 28, 40, 12, 4

    canvas = _Canvas(width, rtl)
    # The legend sits above the bars, starting where they start, swatch then name.
    x = bar_x
    for name, fill in zip(labels, fills, strict=True):
        canvas.rect(x, PAD + 3, 12, 12, fill, "swatch")
        canvas.text(x + 12 + GAP, PAD + 9, name, "start", "legend")
        x += 12 + GAP + len(str(name)) * CHAR_WIDTH + 3 * GAP

    for i, (period, *shares) in enumerate(rows):
        top = PAD + legend_h + i * row_h
        middle = top + row_h / 2
        canvas.text(bar_x - GAP, middle, _fit(period, label_w - PAD - GAP), "end", "label")
        for j, (share, fill) in enumerate(zip(shares, fills, strict=True)):
            y = middle - bar_h - bar_gap / 2 + j * (bar_h + bar_gap)
            length = 0.0
            if share is not None:
                length = _bar_length(_clamp(share, 0.0, 1.0), 1.0, room)
            if length:
                canvas.rect(bar_x, y, length, bar_h, fill, f"bar bar-{j + 1}")
            canvas.text(bar_x + length + GAP, y + bar_h / 2, figure(share), "start", "value")

    desc = separator.join(
        f"{period}: {labels[0]} {figure(a)}, {labels[1]} {figure(b)}" for period, a, b in rows
    )
    uid = _uid("shares", title, labels, rows)
    height = PAD * 2 + legend_h + len(rows) * row_h
    return canvas.svg(height, title, desc + ".", uid)
