"""A drift monitor's control chart as inline SVG, rendered on the server (no script, no
network asset): the chart statistic of each version in the order the versions ran, its
control limits (± the limit, per version), a line where the version changed, a shaded
warm-up where a version has no baseline yet, and a red marker at each alarm (a small one
where the chart signalled again while that alarm stood)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from steward.monitor.view import MetricView, Segment

WIDTH, HEIGHT = 760, 190
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 26
WARM_SLOTS = 12  # the least horizontal room a version takes (a warming one has no points)


@dataclass(frozen=True, slots=True)
class _Placed:
    segment: Segment
    start: int  # first slot
    slots: int


def chart_svg(metric: MetricView) -> Markup:
    placed: list[_Placed] = []
    slot = 0
    for segment in metric.segments:
        slots = max(len(segment.points), WARM_SLOTS)
        placed.append(_Placed(segment, slot, slots))
        slot += slots
    total = max(slot, 2)
    span = (
        max(
            [abs(v) for p in placed for _, v in p.segment.points]
            + [p.segment.limit for p in placed]
            + [1.0]
        )
        * 1.15
    )
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM

    def x(at: float) -> float:
        return LEFT + plot_w * at / (total - 1 if total > 1 else 1)

    def y(value: float) -> float:
        return TOP + plot_h * (span - value) / (2 * span)

    out = [
        f'<svg class="drift-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(metric.metric)} control chart" '
        f'xmlns="http://www.w3.org/2000/svg" data-metric="{escape(metric.metric)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="dc-bg"/>',
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="dc-zero"/>',
        f'<text x="{LEFT - 6}" y="{y(0) + 4:.1f}" class="dc-axis" text-anchor="end">0</text>',
    ]
    labelled: list[float] = [y(0)]  # where axis labels are, so none overlaps another
    for index, p in enumerate(placed):
        s = p.segment
        x0, x1 = x(p.start), x(p.start + p.slots - 1)
        if index > 0:  # the version changed here
            out.append(
                f'<line x1="{x0:.1f}" x2="{x0:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
                f'class="dc-version" data-version="{escape(s.version)}"/>'
            )
        out.append(
            f'<text x="{x0 + 3:.1f}" y="{HEIGHT - 8}" class="dc-label">'
            f"{escape(s.version[:8])}</text>"
        )
        if s.warming:
            out.append(
                f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 4):.1f}" height="{plot_h}" '
                f'class="dc-warm"><title>warm-up {s.warm_count}/{s.warmup}</title></rect>'
            )
            continue
        for sign in (1, -1):
            level = y(sign * s.limit)
            out.append(
                f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{level:.1f}" y2="{level:.1f}" '
                f'class="dc-limit"/>'
            )
        if all(abs(y(s.limit) - at) > 10 for at in labelled):
            labelled.append(y(s.limit))
            out.append(
                f'<text x="{LEFT - 6}" y="{y(s.limit) + 4:.1f}" class="dc-axis" '
                f'text-anchor="end">{s.limit:.2f}</text>'
            )
        if s.points:
            path = " ".join(f"{x(p.start + i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(s.points))
            out.append(f'<polyline points="{path}" class="dc-line"/>')
        signalled, raised = set(s.alarm_points), set(s.raised_points)
        for i, (n, v) in enumerate(s.points):
            if n in raised:
                out.append(
                    f'<circle cx="{x(p.start + i):.1f}" cy="{y(v):.1f}" r="5" '
                    f'class="dc-alarm"><title>alarm after {n} runs</title></circle>'
                )
            elif n in signalled:  # the chart signalled again while the alarm stood
                out.append(
                    f'<circle cx="{x(p.start + i):.1f}" cy="{y(v):.1f}" r="2" '
                    f'class="dc-signal"><title>signal after {n} runs</title></circle>'
                )
    out.append("</svg>")
    return Markup("".join(out))  # every interpolated text is escaped above
