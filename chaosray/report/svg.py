"""Hand-written SVG charts of one experiment, for the HTML report: no plotting
library, no script, text escaped. Every chart shares the same time axis
(seconds since the experiment started), so charts stacked in a page line up,
and each marks the disruptions (numbered, as in the report's tables) and
shades the downtime windows."""

from __future__ import annotations

import math
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__: list[str] = []  # pure logic, no activities

WIDTH = 920
LEFT = 64
RIGHT = 16
PLOT_W = WIDTH - LEFT - RIGHT

OK_COLOR = "#43a047"
FAILED_COLOR = "#e53935"
DOWNTIME_FILL = "#e53935"
DISRUPTION_COLOR = "#6a1b9a"
P50_COLOR = "#1e88e5"
P95_COLOR = "#fb8c00"
MAX_COLOR = "#9e9e9e"
STATE_COLORS = {
    "present": "#a5d6a7",
    "pending": "#ffca28",
    "ready": "#43a047",
    "not_ready": "#fb8c00",
    "terminating": "#37474f",
}
STATE_LABELS = {
    "present": "present at start (state not watched)",
    "pending": "created, not Ready",
    "ready": "Ready",
    "not_ready": "not Ready",
    "terminating": "deletion requested",
}


def _f(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_ticks(low: float, high: float, target: int = 8) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 x 10^k)."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, target)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def fmt_offset(seconds: float) -> str:
    """Axis label: seconds below 2 minutes, else m:ss."""
    if abs(seconds) < 0.05:
        return "0s"
    if abs(seconds) < 120:
        return f"{seconds:.1f}s" if abs(seconds) < 10 and seconds % 1 else f"{seconds:.0f}s"
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    return f"{sign}{whole // 60}:{whole % 60:02d}"


class TimeAxis:
    """Maps seconds since the experiment's start to x pixels."""

    def __init__(self, start: float, end: float) -> None:
        if not end > start:
            end = start + 1.0
        self.start, self.end = start, end

    def x(self, seconds: float) -> float:
        clamped = min(max(seconds, self.start), self.end)
        return LEFT + (clamped - self.start) / (self.end - self.start) * PLOT_W

    def ticks(self) -> list[float]:
        return nice_ticks(self.start, self.end, 10)


def time_axis_for(experiment: dict[str, Any]) -> TimeAxis:
    """From 0 (the experiment's start) to its end, widened to hold every point."""
    times: list[float] = [0.0]
    duration = experiment.get("duration_s")
    if isinstance(duration, int | float):
        times.append(float(duration))
    series = experiment.get("series") or {}
    for key in ("availability", "latency"):
        for point in (series.get(key) or {}).get("points") or []:
            if point.get("offset_s") is not None:
                times.append(point["offset_s"])
                times.append(point["offset_s"] + point.get("step", 1))
    for event in experiment.get("pod_events") or []:
        if event.get("offset_s") is not None:
            times.append(event["offset_s"])
    for disruption in experiment.get("disruptions") or []:
        if disruption.get("offset_s") is not None:
            times.append(disruption["offset_s"])
    return TimeAxis(min(times), max(times))


def _svg(height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label={quoteattr(label)} class="chart">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "") -> str:
    extra = f' class="{cls}"' if cls else ""
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _x_axis(axis: TimeAxis, top: float, bottom: float, label: bool = True) -> list[str]:
    parts = [
        f'<line x1="{LEFT}" y1="{_f(bottom)}" x2="{LEFT + PLOT_W}" y2="{_f(bottom)}" class="axis"/>'
    ]
    for tick in axis.ticks():
        x = axis.x(tick)
        parts.append(
            f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" class="grid"/>'
        )
        if label:
            parts.append(_text(x, bottom + 14, fmt_offset(tick), "middle", "tick"))
    return parts


def _disruption_marks(
    axis: TimeAxis, disruptions: list[dict[str, Any]], top: float, bottom: float, numbers: bool
) -> list[str]:
    """Dashed lines at the disruptions; their numbers above the plot, moved to a
    second or third line when they would overlap the previous one."""
    parts = []
    last_x: list[float] = [-1e9, -1e9, -1e9]
    for index, disruption in enumerate(disruptions, start=1):
        offset = disruption.get("offset_s")
        if offset is None or disruption.get("status") == "dry_run":
            continue
        x = axis.x(offset)
        what = disruption.get("pod") or disruption.get("node") or ""
        tip = f"D{index}: {disruption['kind']} {what} at {fmt_offset(offset)}"
        parts.append(
            f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" class="disruption">'
            f"<title>{escape(tip)}</title></line>"
        )
        if numbers:
            label = f"D{index}"
            lane = next((i for i, prev in enumerate(last_x) if x - prev > 8 * len(label)), None)
            if lane is None:
                continue  # a fourth label in the same spot: the tables list it
            last_x[lane] = x
            parts.append(_text(x, top - 4 - 11 * lane, label, "middle", "dlabel"))
    return parts


def shaded_windows(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    """The windows the plots shade: the outage windows (sliding error rate)
    where the summary has them, else the runs of consecutive failures (older
    journals)."""
    availability = experiment.get("availability") or {}
    if availability.get("failure_equivalent_downtime_s") is not None:  # measured with them
        return list(availability.get("outage_windows") or [])
    return list(availability.get("downtime_windows") or [])


def _downtime_shades(
    axis: TimeAxis, windows: list[dict[str, Any]], top: float, bottom: float
) -> list[str]:
    parts = []
    for window in windows:
        start, end = window.get("start_offset_s"), window.get("end_offset_s")
        if start is None or end is None:
            continue
        x0, x1 = axis.x(start), axis.x(end)
        parts.append(
            f'<rect x="{_f(x0)}" y="{_f(top)}" width="{_f(max(1.0, x1 - x0))}" '
            f'height="{_f(bottom - top)}" class="downtime">'
            f"<title>{escape(f'downtime {end - start:.2f}s from {fmt_offset(start)}')}</title>"
            "</rect>"
        )
    return parts


def _legend(items: list[tuple[str, str, str]], y: float) -> list[str]:
    """``items``: (colour, kind 'box' | 'shade' | 'line', label)."""
    parts = []
    x = float(LEFT)
    for color, kind, label in items:
        if kind == "line":
            dash = ' stroke-dasharray="4 3"' if color == DISRUPTION_COLOR else ""
            parts.append(
                f'<line x1="{_f(x)}" y1="{_f(y - 4)}" x2="{_f(x + 16)}" y2="{_f(y - 4)}" '
                f'stroke="{color}" stroke-width="2"{dash}/>'
            )
        else:
            opacity = ' fill-opacity="0.18"' if kind == "shade" else ""
            parts.append(
                f'<rect x="{_f(x)}" y="{_f(y - 9)}" width="12" height="10" '
                f'fill="{color}"{opacity}/>'
            )
        parts.append(_text(x + 20, y, label, "start", "legend"))
        x += 28 + 6.6 * len(label)
    return parts


def availability_chart(experiment: dict[str, Any], axis: TimeAxis) -> str | None:
    """Requests per second that succeeded (green) and failed (red), stacked;
    downtime windows shaded; disruptions as numbered dashed lines."""
    series = (experiment.get("series") or {}).get("availability") or {}
    points = [p for p in series.get("points") or [] if p.get("offset_s") is not None]
    if not points:
        return None
    top, bottom, height = 40.0, 210.0, 260
    peak = max((p.get("ok", 0) + p.get("failed", 0)) / max(1, p.get("step", 1)) for p in points)
    peak = max(1.0, float(peak))
    ticks = nice_ticks(0, peak, 4)
    y_max: float = max(peak, ticks[-1] if ticks else peak)

    def y(value: float) -> float:
        return bottom - value / y_max * (bottom - top)

    parts = _x_axis(axis, top, bottom)
    for tick in ticks:
        parts.append(
            f'<line x1="{LEFT}" y1="{_f(y(tick))}" x2="{LEFT + PLOT_W}" y2="{_f(y(tick))}" '
            'class="grid"/>'
        )
        parts.append(_text(LEFT - 6, y(tick) + 4, f"{tick:g}", "end", "tick"))
    parts.append(_text(14, (top + bottom) / 2, "requests/s", "middle", "ylabel vertical"))
    parts += _downtime_shades(axis, shaded_windows(experiment), top, bottom)
    for point in points:
        step = max(1, point.get("step", 1))
        x0, x1 = axis.x(point["offset_s"]), axis.x(point["offset_s"] + step)
        width = max(0.6, (x1 - x0) * 0.9)
        ok, failed = point.get("ok", 0) / step, point.get("failed", 0) / step
        if ok:
            parts.append(
                f'<rect x="{_f(x0)}" y="{_f(y(ok))}" width="{_f(width)}" '
                f'height="{_f(bottom - y(ok))}" fill="{OK_COLOR}"/>'
            )
        if failed:
            tip = f"{fmt_offset(point['offset_s'])}: {point.get('failed', 0)} failed"
            parts.append(
                f'<rect x="{_f(x0)}" y="{_f(y(ok + failed))}" width="{_f(width)}" '
                f'height="{_f(y(ok) - y(ok + failed))}" fill="{FAILED_COLOR}">'
                f"<title>{escape(tip)}</title></rect>"
            )
    parts += _disruption_marks(axis, experiment.get("disruptions") or [], top, bottom, True)
    parts += _legend(
        [
            (OK_COLOR, "box", "succeeded"),
            (FAILED_COLOR, "box", "failed"),
            (DOWNTIME_FILL, "shade", "downtime window"),
            (DISRUPTION_COLOR, "line", "disruption (D#)"),
        ],
        height - 8,
    )
    source = series.get("source")
    label = f"Availability of {experiment['name']}: requests per second ({source})"
    return _svg(height, label, parts)


def _log_ticks(low: float, high: float) -> list[float]:
    ticks = []
    power = math.floor(math.log10(low))
    while 10**power <= high * 1.0001:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**power
            if low * 0.9999 <= value <= high * 1.0001:
                ticks.append(float(value))
        power += 1
    return ticks


def latency_chart(experiment: dict[str, Any], axis: TimeAxis) -> str | None:
    """P50 / P95 and max latency per second of the successful requests
    (from the monitor's samples); a log scale when they span over 20x."""
    series = (experiment.get("series") or {}).get("latency") or {}
    points = [p for p in series.get("points") or [] if p.get("offset_s") is not None]
    if not points:
        return None
    # No P99 line: a second holds ~10 requests at the default rate, where a
    # per-second P99 is the maximum (drawn) anyway.
    keys = (("p50_ms", P50_COLOR, "P50"), ("p95_ms", P95_COLOR, "P95"),
            ("max_ms", MAX_COLOR, "max"))  # fmt: skip
    values = [
        float(p[k]) for p in points for k, _c, _l in keys if isinstance(p.get(k), int | float)
    ]
    positive = [v for v in values if v > 0]
    if not positive:
        return None
    top, bottom, height = 40.0, 210.0, 260
    low, high = min(positive), max(positive)
    log = high / low > 20
    if log:
        lo_exp = 10 ** math.floor(math.log10(low))
        hi_exp = 10 ** math.ceil(math.log10(high))
        ticks = _log_ticks(lo_exp, hi_exp)

        def y(value: float) -> float:
            value = max(value, lo_exp)
            span = math.log10(hi_exp) - math.log10(lo_exp)
            return bottom - (math.log10(value) - math.log10(lo_exp)) / span * (bottom - top)

    else:
        ticks = nice_ticks(0, high, 4)
        y_max: float = max(high, ticks[-1] if ticks else high)

        def y(value: float) -> float:
            return bottom - value / y_max * (bottom - top)

    parts = _x_axis(axis, top, bottom)
    for tick in ticks:
        parts.append(
            f'<line x1="{LEFT}" y1="{_f(y(tick))}" x2="{LEFT + PLOT_W}" y2="{_f(y(tick))}" '
            'class="grid"/>'
        )
        parts.append(_text(LEFT - 6, y(tick) + 4, f"{tick:g}", "end", "tick"))
    parts.append(
        _text(14, (top + bottom) / 2, "latency ms" + (" (log)" if log else ""), "middle",
              "ylabel vertical")
    )  # fmt: skip
    parts += _downtime_shades(axis, shaded_windows(experiment), top, bottom)
    for key, color, _label in keys:
        coords = []
        for point in points:
            value = point.get(key)
            if not isinstance(value, int | float) or value <= 0:
                continue
            x = axis.x(point["offset_s"] + max(1, point.get("step", 1)) / 2)
            coords.append(f"{_f(x)},{_f(y(value))}")
        if len(coords) == 1:
            x_text, y_text = coords[0].split(",")
            parts.append(f'<circle cx="{x_text}" cy="{y_text}" r="2.5" fill="{color}"/>')
        elif coords:
            dash = ' stroke-dasharray="2 2"' if key == "max_ms" else ""
            parts.append(
                f'<polyline points="{" ".join(coords)}" fill="none" stroke="{color}" '
                f'stroke-width="1.6"{dash}/>'
            )
    parts += _disruption_marks(axis, experiment.get("disruptions") or [], top, bottom, True)
    parts += _legend(
        [(color, "line", label) for _k, color, label in keys]
        + [(DISRUPTION_COLOR, "line", "disruption (D#)")],
        height - 8,
    )
    return _svg(height, f"Latency of {experiment['name']} per second (samples)", parts)


# The timeline's groups that are not pods (chaosray.k8s.control): their
# events feed the outage causes, not the pods chart.
NOT_PODS = ("endpoints", "nodes", "ray")


def _pod_segments(
    events: list[dict[str, Any]], end: float
) -> dict[str, list[tuple[float, float, str]]]:
    """Per pod, (from, to, state) segments from its timeline events."""
    segments: dict[str, list[tuple[float, float, str]]] = {}
    state: dict[str, tuple[float, str]] = {}
    transitions = {
        "present": "present",
        "created": "pending",
        "scheduled": None,  # keeps the state (still pending)
        "ready": "ready",
        "not_ready": "not_ready",
        "deletion_requested": "terminating",
    }
    for event in events:
        t, pod, kind = event.get("offset_s"), event.get("pod"), event.get("event")
        if t is None or not pod or event.get("group") in NOT_PODS:
            continue
        key = f"{event.get('group') or '?'}/{pod}"
        segments.setdefault(key, [])
        current = state.get(key)
        if kind == "gone":
            if current is not None:
                segments[key].append((current[0], t, current[1]))
                del state[key]
            continue
        new = transitions.get(str(kind))
        if new is None:
            if current is None and kind == "scheduled":
                state[key] = (t, "pending")
            continue
        if current is not None:
            if current[1] == new:
                continue
            segments[key].append((current[0], t, current[1]))
        state[key] = (t, new)
    for key, (since, current_state) in state.items():
        segments[key].append((since, max(since, end), current_state))
    return segments


def pod_timeline_chart(experiment: dict[str, Any], axis: TimeAxis) -> str | None:
    """One row per pod (grouped by the timeline's selector groups): its state
    over time from the pod timeline's events, with the disruptions marked."""
    events = experiment.get("pod_events") or []
    if not events:
        return None
    segments = _pod_segments(events, axis.end)
    rows = sorted(segments, key=lambda k: (k.split("/", 1)[0], min(
        (s[0] for s in segments[k]), default=0.0)))  # fmt: skip
    if not rows:
        return None
    row_h, top = 24, 40.0
    bottom = top + row_h * len(rows)
    height = int(bottom + 44)
    parts = _x_axis(axis, top, bottom)
    for index, key in enumerate(rows):
        y = top + index * row_h
        for start, end, state in segments[key]:
            x0, x1 = axis.x(start), axis.x(end)
            tip = f"{key}: {STATE_LABELS[state]} {fmt_offset(start)} to {fmt_offset(end)}"
            parts.append(
                f'<rect x="{_f(x0)}" y="{_f(y + 12)}" width="{_f(max(1.5, x1 - x0))}" '
                f'height="{row_h - 14}" fill="{STATE_COLORS[state]}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        parts.append(_text(LEFT + 3, y + 10, key, "start", "podlabel"))
    parts += _disruption_marks(axis, experiment.get("disruptions") or [], top, bottom, True)
    parts += _legend(
        [(STATE_COLORS[s], "box", STATE_LABELS[s]) for s in STATE_COLORS]
        + [(DISRUPTION_COLOR, "line", "disruption (D#)")],
        height - 8,
    )
    return _svg(height, f"Pod timeline of {experiment['name']}", parts)
