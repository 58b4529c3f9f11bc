"""Charts for the console as inline SVG, rendered on the server: no script, no network
asset. Colours come from CSS classes (console.css), so dark mode restyles them; every
mark has a <title> (its value on hover) and every chart an aria-label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 48, 22, 8


def _nice(top: float) -> float:
    """A round upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten."""
    if top <= 0:
        return 1.0
    power = 10.0 ** len(str(int(top))) / 10 if top >= 1 else 1.0
    while power > top:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= top:
            return step * power
    return 10 * power


def _frame(label: str, body: list[str], top: float, fmt: Callable[[float], str]) -> Markup:
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    grid = []
    for i in range(5):
        value = top * i / 4
        y = PAD_TOP + plot_h - plot_h * i / 4
        grid.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text class="axis" x="{PAD_LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">'
                    f"{escape(fmt(value))}</text>")  # fmt: skip
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMidYMid meet">'
        + "".join(grid) + "".join(body) + "</svg>"
    )  # fmt: skip


def _x_labels(labels: Sequence[str], slot: float) -> list[str]:
    every = max(1, len(labels) // 8)  # at most ~8 labels along the axis
    return [
        f'<text class="axis" x="{PAD_LEFT + slot * i + slot / 2:.1f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(text)}</text>'
        for i, text in enumerate(labels)
        if i % every == 0
    ]


def stacked_bars(
    label: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
) -> Markup:
    """One bar per label, stacked by series (class `s-NAME`, so colours follow the name)."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    top = _nice(max(totals, default=0))
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = (WIDTH - PAD_LEFT) / max(len(labels), 1)
    body: list[str] = []
    for i, text in enumerate(labels):
        base = float(PAD_TOP + plot_h)
        for name, values in series.items():
            if not values[i]:
                continue
            h = plot_h * values[i] / top
            base -= h
            body.append(
                f'<rect class="bar s-{escape(name)}" x="{PAD_LEFT + slot * i + slot * 0.15:.1f}" '
                f'y="{base:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
                f"<title>{escape(text)}: {escape(fmt(values[i]))} {escape(name)}</title></rect>"
            )
    return _frame(label, body + _x_labels(labels, slot), top, fmt)


def bars(
    label: str, labels: Sequence[str], values: Sequence[float], fmt: Callable[[float], str]
) -> Markup:
    """One bar per label (one series)."""
    return stacked_bars(label, labels, {"value": values}, fmt)


def hbars(label: str, items: Sequence[tuple[str, float]], fmt: Callable[[float], str]) -> Markup:
    """Horizontal bars, one per (name, value), longest first as given: names stay readable
    on a phone."""
    row, gap, name_w = 22, 6, 170
    height = max(len(items), 1) * (row + gap) + gap
    top = max((v for _, v in items), default=0) or 1
    body = []
    for i, (name, value) in enumerate(items):
        y = gap + i * (row + gap)
        w = (WIDTH - name_w - 70) * value / top
        body.append(
            f'<text class="label" x="{name_w - 6}" y="{y + row * 0.7:.1f}" text-anchor="end">'
            f"{escape(name[:28])}</text>"
            f'<rect class="bar s-value" x="{name_w}" y="{y}" width="{max(w, 1):.1f}" '
            f'height="{row}"><title>{escape(name)}: {escape(fmt(value))}</title></rect>'
            f'<text class="axis" x="{name_w + w + 6:.1f}" y="{y + row * 0.7:.1f}">'
            f"{escape(fmt(value))}</text>"
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )
