"""The HTML report of a suite: one self-contained file (inline CSS and SVG, no
script, nothing fetched), readable offline and attachable to a CI run."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import escape
from typing import Any

from chaosray.journal import epoch
from chaosray.report.render import (
    extra_evidence,
    fmt_ms,
    fmt_rate,
    fmt_recovery,
    fmt_s,
    fmt_share,
    ordered_criteria,
)
from chaosray.report.suite import verdict_word
from chaosray.report.svg import (
    availability_chart,
    latency_chart,
    pod_timeline_chart,
    time_axis_for,
)

__all__: list[str] = []  # pure logic, no activities

MAX_EVENT_ROWS = 500

CSS = """
:root { --ok: #2e7d32; --bad: #c62828; --muted: #607d8b; --line: #e0e0e0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
  color: #212121; margin: 0; background: #fafafa; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 40px 0 6px; padding-top: 14px; border-top: 2px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 6px; color: #37474f; }
p.meta { color: var(--muted); margin: 2px 0 12px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-weight: 600;
  font-size: 12px; color: #fff; vertical-align: 2px; letter-spacing: .03em; }
.badge.passed { background: var(--ok); } .badge.failed { background: var(--bad); }
.badge.skipped { background: #999; } .badge.inconclusive { background: #ef6c00; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: #f5f5f5; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
tr.failed td.verdict { color: var(--bad); font-weight: 600; }
.crit { font-weight: 600; } .crit.held { color: var(--ok); }
.crit.broken, .crit.no-evidence { color: var(--bad); }
tr.passed td.verdict { color: var(--ok); font-weight: 600; }
ul.reasons { margin: 6px 0 10px; padding-left: 20px; }
ul.reasons li { margin: 2px 0; color: #b71c1c; }
ul.evidence li { color: #4e342e; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; margin: 10px 0; }
.figure { flex: 1 1 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px;
  min-width: 96px; }
.figure .v { font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums; }
.figure .k { font-size: 11px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; }
.note { color: var(--muted); font-size: 12px; margin: 2px 0 8px; }
code { font: 12px/1.3 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
details summary { cursor: pointer; color: #37474f; font-weight: 600; margin: 8px 0; }
svg.chart { display: block; margin: 4px 0 6px; }
svg.chart text { font: 11px "DejaVu Sans", Arial, sans-serif; fill: #424242; }
svg.chart text.tick { fill: #616161; font-size: 10px; }
svg.chart text.legend { font-size: 11px; }
svg.chart text.dlabel { fill: #6a1b9a; font-weight: 700; font-size: 10px; }
svg.chart text.podlabel { font-size: 10px; fill: #263238; }
svg.chart text.vertical { transform-box: fill-box; transform-origin: center;
  transform: rotate(-90deg); }
svg.chart line.axis { stroke: #9e9e9e; stroke-width: 1; }
svg.chart line.grid { stroke: #eeeeee; stroke-width: 1; }
svg.chart line.disruption { stroke: #6a1b9a; stroke-width: 1.5; stroke-dasharray: 4 3; }
svg.chart rect.downtime { fill: #e53935; fill-opacity: .14; }
"""


def _e(value: Any) -> str:
    return escape("-" if value is None else str(value))


def _slug(name: str, index: int) -> str:
    return f"x{index}-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]


def _badge(word: str) -> str:
    """``passed``, ``failed``, ``inconclusive`` or ``skipped``, as a badge."""
    return f'<span class="badge {word}">{word.upper()}</span>'


def _table(
    headers: list[tuple[str, bool]], rows: list[list[str]], cls: list[str] | None = None
) -> str:
    """``headers``: (title, numeric); cells are already-escaped HTML."""
    head = "".join(f'<th class="num">{t}</th>' if num else f"<th>{t}</th>" for t, num in headers)
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{c}</td>' if headers[i][1] else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        row_cls = f' class="{cls[index]}"' if cls else ""
        body.append(f"<tr{row_cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _comparison(suite: dict[str, Any], slugs: list[str]) -> str:
    rows, classes = [], []
    for slug, row in zip(slugs, suite["comparison"]["rows"], strict=True):
        classes.append(row["verdict"])
        rows.append(
            [
                f'<a href="#{slug}">{_e(row["experiment"])}</a>',
                _e(row["verdict"]),
                _e(fmt_rate(row["success_rate"])),
                _e(fmt_ms(row["p50_ms"])),
                _e(fmt_ms(row["p95_ms"])),
                _e(fmt_ms(row["p99_ms"])),
                _e(fmt_s(row["failure_equivalent_downtime_s"])),
                _e(fmt_s(row["outage_time_s"])),
                (
                    f'<span title="{_e(row["key_recovery"])}">{_e(fmt_recovery(row))}</span>'
                    if row["key_recovery"]
                    else _e(fmt_recovery(row))
                ),
                _e(fmt_share(row.get("budget_share"))),
            ]
        )
    headers = [(_e(c["title"]), c["key"] not in ("experiment", "verdict"))
               for c in suite["comparison"]["columns"]]  # fmt: skip
    table = _table(headers, rows, classes)
    return table.replace("<td>passed</td>", '<td class="verdict">passed</td>').replace(
        "<td>failed</td>", '<td class="verdict">failed</td>'
    )


def _figures(experiment: dict[str, Any]) -> str:
    availability = experiment["availability"]
    if availability.get("source") == "none":
        return (
            '<p class="note">No availability measured: this experiment has no availability '
            "monitor, samples or k6 load.</p>"
        )
    latency = availability.get("latency_ms") or {}
    key = experiment.get("key_recovery")
    items = [
        ("success rate", fmt_rate(availability.get("success_rate"))),
        ("P50", fmt_ms(latency.get("p50"))),
        ("P95", fmt_ms(latency.get("p95"))),
        ("P99", fmt_ms(latency.get("p99"))),
        ("failure-equivalent downtime", fmt_s(availability.get("failure_equivalent_downtime_s"))),
        (
            "outage windows (> 50 % failed over 1 s)",
            f"{len(availability.get('outage_windows') or [])}, total "
            f"{fmt_s(availability.get('outage_time_s'))}, longest "
            f"{fmt_s(availability.get('longest_outage_window_s'))}",
        ),
        ("runs of consecutive failures", fmt_s(availability.get("total_downtime_s"))),
    ]
    if key:
        items.append(
            (f"recovery ({key['metric']})",
             fmt_s(key["seconds"]) if key["seconds"] is not None else "not recovered")
        )  # fmt: skip
    cells = "".join(
        f'<div class="figure"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
        for k, v in items
    )
    requests = availability.get("requests")
    source = availability.get("source")
    note = (
        f"Availability from {_e(source)}"
        + (f" ({_e(availability.get('activity'))})" if availability.get("activity") else "")
        + (f", {_e(requests)} requests" if requests is not None else "")
        + (
            ". The service was still down when measuring ended."
            if availability.get("still_down")
            else "."
        )
    )
    return f'<div class="figures">{cells}</div><p class="note">{note}</p>'


def _reasons(experiment: dict[str, Any]) -> str:
    verdict = experiment["verdict"]
    parts = []
    if verdict["reasons"]:
        items = "".join(f"<li>{_e(r['message'])}</li>" for r in verdict["reasons"])
        parts.append(f'<ul class="reasons">{items}</ul>')
    extra = extra_evidence(verdict)
    if extra:
        items = "".join(f"<li>{_e(r['message'])}</li>" for r in extra)
        parts.append(
            '<p class="note">Evidence from the journal:</p>'
            f'<ul class="reasons evidence">{items}</ul>'
        )
    return "".join(parts)


def _clock(value: Any) -> str:
    """An RFC 3339 time as HH:MM:SS.mmm (UTC), the full stamp in a tooltip."""
    seconds = epoch(value)
    if seconds is None:
        return _e(value)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S.%f")[:-3]
    return f'<span title="{_e(value)}">{text}</span>'


def _detail(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _offset(value: Any) -> str:
    """Seconds since the experiment started, to 0.1 s (the monitor's resolution at 10/s)."""
    return f"{value:.1f} s" if isinstance(value, int | float) else "-"


def _disruptions(experiment: dict[str, Any]) -> str:
    rows = []
    for index, d in enumerate(experiment["disruptions"], start=1):
        details = d.get("details") or {}
        extra = ", ".join(f"{k}={_detail(v)}" for k, v in details.items() if v not in (None, ""))
        rows.append(
            [f"D{index}", _e(d["kind"]), _e(d.get("pod")), _e(d.get("node")),
             _offset(d.get("offset_s")), _clock(d.get("at")), _e(d["status"]),
             _e(d["activity"]) + (f'<br><span class="note">{_e(extra)}</span>' if extra else "")]
        )  # fmt: skip
    headers = [("#", False), ("kind", False), ("pod", False), ("node", False), ("at", True),
               ("UTC", False), ("status", False), ("activity", False)]  # fmt: skip
    return _table(headers, rows)


def _recovery(experiment: dict[str, Any]) -> str:
    rows = []
    for f in experiment["recovery"]:
        value = fmt_s(f["seconds"]) if f["seconds"] is not None else "not recovered"
        since = f.get("since_source") or ""
        rows.append(
            [_e(f["activity"]), _e(f["metric"]) + (" (key)" if f["primary"] else ""),
             _e(value), _e(f["phase"]), _e(since), _clock(f.get("recovered_at")),
             _e(f.get("error") or "")]
        )  # fmt: skip
    headers = [("activity", False), ("figure", False), ("seconds", True), ("phase", False),
               ("measured from", False), ("recovered (UTC)", False), ("error", False)]  # fmt: skip
    return _table(headers, rows)


def _windows(windows: list[dict[str, Any]]) -> str:
    rows = [
        [_offset(w.get("start_offset_s")), _offset(w.get("end_offset_s")),
         _e(fmt_s(w.get("duration_s"))), _e(w.get("failed_requests")),
         "yes" if w.get("open") else "", _clock(w.get("start_time"))]
        for w in windows
    ]  # fmt: skip
    headers = [("from", True), ("to", True), ("duration", True), ("failed requests", True),
               ("still open", False), ("start (UTC)", False)]  # fmt: skip
    return _table(headers, rows)


def _k6(k6: dict[str, Any]) -> str:
    latency = k6.get("latency_ms") or {}
    thresholds = ", ".join(
        f"{name}: {'ok' if ok else 'FAILED'}" for name, ok in (k6.get("thresholds") or {}).items()
    )
    rows = [
        ["status", _e(k6.get("status")) + (f" (exit {_e(k6.get('exit_code'))}: "
                                           f"{_e(k6.get('exit_reason'))})"
                                           if k6.get("exit_code") is not None else "")],
        ["mode", _e(k6.get("mode"))],
        ["requests", f"{_e(k6.get('requests'))} ({_e(k6.get('failed'))} failed, of which "
                     f"{_e(k6.get('dropped_iterations') or 0)} dropped by k6 for want of a VU; "
                     f"max VUs {_e(k6.get('max_vus'))})"],
        ["success rate", _e(fmt_rate(k6.get("success_rate")))],
        ["latency", " / ".join(f"{k.upper()} {fmt_ms(latency.get(k))}"
                               for k in ("p50", "p95", "p99", "avg", "max"))],
        ["thresholds", _e(thresholds or "none")],
        ["failure-equivalent downtime", _e(fmt_s(k6.get("failure_equivalent_downtime_s")))],
        ["outage windows", f"{len(k6.get('outage_windows') or [])}, total "
                           f"{_e(fmt_s(k6.get('outage_time_s')))} (timeline by "
                           f"{_e(k6.get('timeline_keyed_by'))})"],
    ]  # fmt: skip
    if k6.get("error"):
        rows.append(["error", _e(k6["error"])])
    return _table([("k6", False), ("", False)], rows)


def _events(experiment: dict[str, Any]) -> str:
    events = experiment["pod_events"]
    shown = events[:MAX_EVENT_ROWS]
    rows = [
        [_offset(e.get("offset_s")), _e(e.get("event")), _e(e.get("group")), _e(e.get("pod")),
         _e(e.get("node")), _clock(e.get("time")), _e(e.get("api_time"))]
        for e in shown
    ]  # fmt: skip
    headers = [("at", True), ("event", False), ("group", False), ("pod", False),
               ("node", False), ("seen (UTC)", False), ("API time", False)]  # fmt: skip
    more = (
        f'<p class="note">First {MAX_EVENT_ROWS} of {len(events)} events; '
        "the JSON report has all.</p>"
        if len(events) > MAX_EVENT_ROWS
        else ""
    )
    errors = experiment.get("pod_event_errors") or {}
    failed = "".join(f"<li>{_e(g)}: {_e(m)}</li>" for g, m in errors.items())
    return (
        (f'<p class="note">Watch errors:</p><ul class="reasons">{failed}</ul>' if failed else "")
        + _table(headers, rows)
        + more
    )


def _activities(experiment: dict[str, Any]) -> str:
    rows = [
        [_e(a["name"]), _e(a["phase"]), _e(a["func"]), _e(a["status"]),
         _offset(a.get("start_offset_s")), _e(fmt_s(a.get("duration_s"))), _e(a.get("error") or "")]
        for a in experiment["activities"]
    ]  # fmt: skip
    headers = [("activity", False), ("phase", False), ("provider", False), ("status", False),
               ("start", True), ("duration", True), ("error", False)]  # fmt: skip
    return _table(headers, rows)


def _causes(experiment: dict[str, Any]) -> str:
    """Each outage window with what preceded it (under the availability plot)."""
    attributed = experiment.get("outage_causes") or {}
    windows = attributed.get("windows") or []
    if not windows:
        return ""
    what = (
        "outage windows"
        if windows[0].get("kind", "outage") == "outage"
        else "runs of failed requests (there was no outage window)"
    )
    rows = []
    for window in windows:
        hints = "".join(
            f'<div class="hint">hint <a href="{_e(h["reference"])}">{_e(h["rule"])}</a>: '
            f"{_e(h['text'])} Seen: {_e(h.get('seen') or '-')}</div>"
            for h in window["hints"]
        )
        inside = "; ".join(f"{e['text']} (+{e['after_start_s']:.1f} s)" for e in window["inside"])
        rows.append(
            [
                _e(_offset(window.get("start_offset_s"))),
                _e(fmt_s(window["duration_s"])),
                _e(window["nearest_event"]) + hints,
                _e(inside or "-"),
            ]
        )
    table = _table(
        [("Start", True), ("Length", True), ("Cause (nearest preceding event)", False),
         ("Events inside", False)],
        rows,
    )  # fmt: skip
    return (
        f"<h4>Causes of the {what} (events up to {attributed['horizon_s']:g} s "
        f"before each; watched: {_e(', '.join(attributed.get('watched') or []) or '-')})</h4>"
        + table
    )


def _budget(experiment: dict[str, Any]) -> str:
    budget = experiment.get("budget")
    if not budget:
        return ""
    objective = budget["slo"]
    latency = (
        f", p99 &le; {objective['latency_p99_ms']:g} ms" if objective["latency_p99_ms"] else ""
    )
    burn = budget["burn_rate"]
    return (
        f"<h3>Error budget</h3><p>SLO {objective['target']:.3%} over "
        f"{objective['period_days']:g} days{latency}: the period's budget is "
        f"{budget['period_budget_s']:.0f} s. This scenario consumed "
        f"<b>{_e(fmt_s(budget['consumed_s']))}</b> ({_e(budget['consumed_requests'])} requests), "
        f"<b>{_e(fmt_share(budget['share']))}</b> of the period's budget; burn rate "
        f"{'-' if burn is None else f'{burn:.1f}x'} during the disruption.</p>"
    )


def _sources(experiment: dict[str, Any]) -> str:
    """Each availability source with its request timeout, and why two that
    disagree do."""
    block = experiment.get("availability_sources") or {}
    sources = block.get("sources") or []
    if len(sources) < 2:
        return ""

    def success(x: dict[str, Any]) -> str:
        rate = x["failure_rate"]
        return fmt_rate(None if rate is None else 1 - rate)

    said = "; ".join(
        f"{_e(x['activity'])}: {_e(success(x))} success, timeout {_e(x['timeout_s'])} s"
        for x in sources
    )
    note = f'<p class="note">Availability sources: {said}.</p>'
    if block.get("disagreement"):
        note += f'<ul class="reasons"><li>Sources disagree: {_e(block["disagreement"])}</li></ul>'
    return note


def _criteria(experiment: dict[str, Any]) -> str:
    """The criteria table: each claim, held, broken or without evidence,
    with its figure, bound and the event it is timed from; broken rows first."""
    rows = ordered_criteria(experiment)
    if not rows:
        return ""
    cells = [
        [
            f'<span class="crit {_e(r["state"]).replace(" ", "-")}">{_e(r["state"])}</span>',
            f"<code>{_e(r['id'])}</code>",
            _e(r["message"]),
            _e(r.get("measured")),
            _e(r.get("bound")),
            _e(r.get("since_source")) + (f"<br>{_clock(r['since'])}" if r.get("since") else ""),
        ]
        for r in rows
    ]
    held = sum(r["state"] == "held" for r in rows)
    headers = [
        ("State", False),
        ("Criterion", False),
        ("What was seen", False),
        ("Measured", True),
        ("Bound", True),
        ("Timed from", False),
    ]
    return f"<h3>Criteria ({held} of {len(rows)} held)</h3>" + _table(
        headers, cells, [str(r["state"]).replace(" ", "-") for r in rows]
    )


def _experiment(experiment: dict[str, Any], slug: str) -> str:
    verdict = experiment["verdict"]
    parts = [
        f'<h2 id="{slug}">{_e(experiment["name"])} {_badge(verdict_word(verdict))}</h2>',
        f'<p class="meta">{_e(experiment["title"])}</p>'
        if experiment["title"] != experiment["name"]
        else "",
        f'<p class="meta">Started {_e(experiment.get("started"))}, '
        f"{_e(fmt_s(experiment.get('duration_s')))}; journal status "
        f"<code>{_e(experiment.get('journal_status'))}</code>; verdict from "
        f"<code>{_e(verdict['source'])}</code>.</p>",
        _reasons(experiment),
        _sources(experiment),
        _criteria(experiment),
        _figures(experiment),
    ]  # fmt: skip
    axis = time_axis_for(experiment)
    charts = [
        ("Availability", availability_chart(experiment, axis)),
        ("Latency", latency_chart(experiment, axis)),
        ("Pods", pod_timeline_chart(experiment, axis)),
    ]
    for title, svg in charts:
        if svg:
            parts.append(f"<h3>{title}</h3>{svg}")
            if title == "Availability":
                parts.append(_causes(experiment))
    if not charts[1][1] and charts[0][1]:
        parts.append(
            '<p class="note">No latency-over-time chart: it needs the monitor\'s samples '
            "(<code>samples_path</code>).</p>"
        )
    if any(svg for _t, svg in charts):
        parts.append('<p class="note">x axis: time since the experiment started.</p>')
    if not charts[0][1]:
        parts.append(_causes(experiment))
    parts.append(_budget(experiment))
    if experiment["recovery"]:
        parts.append("<h3>Recovery times</h3>" + _recovery(experiment))
    if experiment["disruptions"]:
        parts.append("<h3>Disruptions</h3>" + _disruptions(experiment))
    windows = experiment["availability"].get("downtime_windows") or []
    outages = experiment["availability"].get("outage_windows") or []
    if experiment["availability"].get("source") != "none":
        parts.append(
            f"<h3>Outage windows ({len(outages)}): more than 50 % of requests failed over 1 s</h3>"
            + (
                _windows(outages)
                if outages
                else '<p class="note">None: the error rate never exceeded 50 % over 1 s.</p>'
            )
        )
        parts.append(
            f"<h3>Runs of consecutive failed requests ({len(windows)})</h3>"
            + (_windows(windows) if windows else '<p class="note">None: no request failed.</p>')
        )
    if experiment.get("k6"):
        parts.append("<h3>k6 load</h3>" + _k6(experiment["k6"]))
    if experiment["pod_events"] or experiment.get("pod_event_errors"):
        parts.append(
            f"<details><summary>Event timeline: pods, endpoints, nodes, Ray "
            f"({len(experiment['pod_events'])} events)"
            f"</summary>{_events(experiment)}</details>"
        )
    parts.append(
        f"<details><summary>Activities ({len(experiment['activities'])})</summary>"
        f"{_activities(experiment)}</details>"
    )
    return "\n".join(p for p in parts if p)


def _repeats(repeated: dict[str, Any]) -> str:
    rows = []
    for name, block in repeated.items():
        for key, figure in block["figures"].items():
            if figure["median"] is None:
                continue
            rows.append([_e(name), _e(key), _e(f"{figure['median']:.4g}"),
                         _e(f"{figure['min']:.4g} .. {figure['max']:.4g}"),
                         _e(block["runs"])])  # fmt: skip
    return "<h3>Repeats: median and spread</h3>" + _table(
        [("Experiment", False), ("Figure", False), ("Median", True), ("Min .. max", True),
         ("Runs", True)], rows)  # fmt: skip


def _baseline_comparison(comparison: dict[str, Any]) -> str:
    from chaosray.report.compare import COMPARISON_CAPTION, COMPARISON_HEADERS, comparison_lines

    rows, classes = [], []
    for line in comparison_lines(comparison):
        rows.append([_e(cell) for cell in line])
        classes.append("failed" if line[-1] == "REGRESSION" else "passed")
    verdict = "regressed" if comparison["regressed"] else "no regression"
    baseline = comparison.get("baseline") or {}
    return (
        f"<h2>Compared with the baseline: {_e(verdict)}</h2>"
        f'<p class="meta">Baseline {_e(baseline.get("folder") or baseline.get("started"))}, '
        f"alpha {comparison['alpha']:g}. The run is the unit; a regression is a significant "
        f"change for the worse. {_e(COMPARISON_CAPTION)}</p>"
        + _table([(h, False) for h in COMPARISON_HEADERS], rows, classes)
    )


def render_html(suite: dict[str, Any]) -> str:
    """One self-contained HTML page: the suite's verdict and comparison table,
    then per experiment its verdict and reasons, key figures, charts of
    availability (ok/failed requests per second), latency over time (when
    samples were given) and pod states, all on one time axis with the
    disruptions and downtime windows marked, and tables of recovery times,
    disruptions, downtime windows, the k6 summary, the pod event timeline and
    the activities."""
    totals = suite["totals"]
    title = suite.get("title") or "chaosray report"
    slugs = [_slug(e["name"], i) for i, e in enumerate(suite["experiments"])]
    body = [
        f"<h1>{_e(title)} {_badge('passed' if totals['overall_passed'] else 'failed')}</h1>",
        f'<p class="meta">{_e(suite.get("started"))} to {_e(suite.get("ended"))} '
        f"({_e(fmt_s(suite.get('duration_s')))}): {totals['experiments']} experiments, "
        f"{totals['passed']} passed, {totals['failed']} failed"
        + (f", {totals['inconclusive']} inconclusive" if totals.get("inconclusive") else "")
        + ".</p>",
        "<h3>Comparison</h3>",
        _comparison(suite, slugs),
    ]
    budget = suite.get("budget")
    if budget:
        body.append(
            f'<p class="meta">Error budget: the suite burned {_e(fmt_s(budget["consumed_s"]))}, '
            f"{_e(fmt_share(budget['share']))} of the {budget['period_budget_s']:.0f} s a "
            f"{budget['slo']['target']:.3%} SLO allows over {budget['slo']['period_days']:g} "
            "days.</p>"
        )
    repeated = suite.get("repeats") or {}
    if repeated:
        body.append(_repeats(repeated))
    if suite.get("baseline_comparison"):
        body.append(_baseline_comparison(suite["baseline_comparison"]))
    metadata = suite.get("metadata") or {}
    if metadata:
        rows = [[_e(k), _e(v)] for k, v in metadata.items()]
        body.append("<details><summary>Run details</summary>"
                    + _table([("", False), ("", False)], rows) + "</details>")  # fmt: skip
    for experiment, slug in zip(suite["experiments"], slugs, strict=True):
        body.append(_experiment(experiment, slug))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )
