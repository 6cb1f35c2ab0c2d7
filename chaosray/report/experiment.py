"""One experiment's journal as a report document
(``chaosray.report.experiment/v1``; every field is described in
``docs/report-schema.md``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chaosray import causes, slo
from chaosray.contract import Blocks, blocks_of, has_blocks, legacy_blocks, legacy_recovery_metric
from chaosray.journal import (
    INTERRUPTED_FLAG,
    activity_name,
    epoch,
    func_of,
    is_interrupted,
    iso,
    iter_entries,
    last_error_line,
    number,
    provider_of,
    short_func,
)
from chaosray.judge import K6_RUN_NAME, judge, objective_of, recorded_criteria
from chaosray.report.series import series_from_samples

__all__: list[str] = []  # pure logic, no activities

EXPERIMENT_SCHEMA = "chaosray.report.experiment/v1"

TIMELINE_RUN_NAME = "pod-timeline"
# Phases whose recovery figures can be the experiment's key recovery time.
KEY_RECOVERY_PHASES = ("method", "steady_state_after")
# What a recovery probe raises when it does not recover in time
# (chaosray.contract.RecoveryTimeout), as the journal's exception shows it.
RECOVERY_TIMEOUT = "RecoveryTimeout:"


def _entry_status(entry: dict[str, Any]) -> str:
    if is_interrupted(entry):
        return "interrupted"
    status = entry.get("status")
    return str(status) if status is not None else "unknown"


def entry_blocks(entry: dict[str, Any]) -> Blocks:
    """An entry's contract blocks; for an output from before the contract,
    the one fallback (chaosray.contract.legacy_blocks)."""
    output = entry.get("output")
    if has_blocks(output):
        return blocks_of(output)
    return legacy_blocks(short_func(entry), output, entry.get("start"))


def _offset(t: float | None, origin: float | None) -> float | None:
    return None if t is None or origin is None else t - origin


def _window(window: dict[str, Any], origin: float | None) -> dict[str, Any]:
    start, end = number(window.get("start")), number(window.get("end"))
    duration = number(window.get("duration_s"))
    if duration is None and start is not None and end is not None:
        duration = end - start
    return {
        "start": start,
        "end": end,
        "start_time": iso(start),
        "start_offset_s": _offset(start, origin),
        "end_offset_s": _offset(end, origin),
        "duration_s": duration,
        "failed_requests": window.get("failed_requests"),
        "open": bool(window.get("open")),
        # What the failed requests got (chaosray.metrics): the causes' hints need it.
        "failures_by_status": dict(window.get("failures_by_status") or {}),
    }


def _latency_ms_from_s(latency: Any) -> dict[str, float | None]:
    latency = latency if isinstance(latency, dict) else {}
    out: dict[str, float | None] = {}
    for key in ("p50", "p95", "p99", "max"):
        value = number(latency.get(key))
        out[key] = None if value is None else value * 1000.0
    return out


def _latency_ms(latency: Any) -> dict[str, float | None]:
    latency = latency if isinstance(latency, dict) else {}
    return {key: number(latency.get(key)) for key in ("p50", "p95", "p99", "max")}


def _outage_figures(output: dict[str, Any], origin: float | None) -> dict[str, Any]:
    """The two availability figures (chaosray.metrics): failure-equivalent
    downtime and outage windows on a sliding error rate."""
    return {
        "failure_equivalent_downtime_s": number(output.get("failure_equivalent_downtime_s")),
        "outage_windows": [
            _window(w, origin) for w in output.get("outage_windows") or [] if isinstance(w, dict)
        ],
        "outage_time_s": number(output.get("outage_time_s")),
        "longest_outage_window_s": number(output.get("longest_outage_window_s")),
    }


def _monitor(entry: dict[str, Any], block: dict[str, Any], origin: float | None) -> dict[str, Any]:
    """One availability block (chaosray.contract.Availability) of an activity."""
    latency = block.get("latency_s")
    return {
        "activity": activity_name(entry),
        "status": _entry_status(entry),
        "url": block.get("url"),
        "rate_per_s": number(block.get("rate_per_s")),
        "requests": block.get("requests"),
        "failed": block.get("failed"),
        "success_rate": number(block.get("success_rate")),
        "latency_ms": _latency_ms_from_s(latency),
        "latency_exact": latency.get("exact") if isinstance(latency, dict) else None,
        "downtime_windows": [
            _window(w, origin) for w in block.get("downtime_windows") or [] if isinstance(w, dict)
        ],
        "total_downtime_s": number(block.get("total_downtime_s")),
        "longest_outage_s": number(block.get("longest_outage_s")),
        **_outage_figures(block, origin),
        "recovered_at": iso(number(block.get("recovered_at"))),
        "still_down": bool(block.get("still_down")),
        "errors": dict(block.get("errors") or {}),
        "samples_path": block.get("samples_path"),
        "timeout_s": number(block.get("timeout_s")),
        "error": last_error_line(entry),
        "timeline": list(block.get("timeline") or []),
    }


# Two sources of one run whose failure rates differ by more than this many
# percentage points are said to disagree, with why (their timeouts, or their
# different requests).
SOURCES_MARGIN_PP = 1.0


def availability_sources(
    monitors: list[dict[str, Any]], k6: dict[str, Any] | None
) -> dict[str, Any]:
    """Every source that measured availability in the run, each with its
    failure rate and request timeout, and whether two of them disagree."""
    sources = [
        {
            "source": "monitor",
            "activity": m["activity"],
            "requests": m["requests"],
            "failed": m["failed"],
            "failure_rate": None if m["success_rate"] is None else 1.0 - m["success_rate"],
            "timeout_s": m.get("timeout_s"),
        }
        for m in monitors
        if m["requests"]
    ]
    if k6 is not None and k6.get("requests"):
        rate = number(k6.get("success_rate"))
        sources.append(
            {
                "source": "k6",
                "activity": K6_RUN_NAME,
                "requests": k6.get("requests"),
                "failed": k6.get("failed"),
                "failure_rate": None if rate is None else 1.0 - rate,
                "timeout_s": number(k6.get("timeout_s")),
            }
        )
    rated = [x for x in sources if x["failure_rate"] is not None]
    disagreement = None
    if len(rated) >= 2:
        low = min(rated, key=lambda x: x["failure_rate"])
        high = max(rated, key=lambda x: x["failure_rate"])
        gap = (high["failure_rate"] - low["failure_rate"]) * 100.0
        if gap > SOURCES_MARGIN_PP:
            timeouts = {x["timeout_s"] for x in (low, high)}
            why = (
                "their request timeouts differ (a request slower than the shorter one failed "
                "for one source only)"
                if len(timeouts) > 1
                else "their timeouts are the same, so they saw different requests: each sends "
                "its own on its own schedule, and k6 counts an iteration it dropped as failed"
            )
            disagreement = (
                f"{high['activity']} failed {high['failure_rate']:.2%} of its requests (timeout "
                f"{_seconds_text(high['timeout_s'])}) and {low['activity']} "
                f"{low['failure_rate']:.2%} (timeout {_seconds_text(low['timeout_s'])}): "
                f"{gap:.1f} percentage points apart, more than {SOURCES_MARGIN_PP:g}; {why}"
            )
    return {"sources": sources, "margin_pp": SOURCES_MARGIN_PP, "disagreement": disagreement}


def _seconds_text(value: Any) -> str:
    return f"{value:g} s" if isinstance(value, int | float) else "unknown"


def _availability_from(source: str, block: dict[str, Any], activity: str | None) -> dict[str, Any]:
    return {
        "source": source,
        "activity": activity,
        "requests": block.get("requests"),
        "failed": block.get("failed"),
        "success_rate": number(block.get("success_rate")),
        "latency_ms": block.get("latency_ms") or _latency_ms(None),
        "downtime_windows": block.get("downtime_windows") or [],
        "total_downtime_s": number(block.get("total_downtime_s")),
        "longest_outage_s": number(block.get("longest_outage_s")),
        "failure_equivalent_downtime_s": number(block.get("failure_equivalent_downtime_s")),
        "outage_windows": block.get("outage_windows") or [],
        "outage_time_s": number(block.get("outage_time_s")),
        "longest_outage_window_s": number(block.get("longest_outage_window_s")),
        "still_down": bool(block.get("still_down")),
    }


def _k6(journal: dict[str, Any], origin: float | None) -> dict[str, Any] | None:
    chaosray = journal.get("chaosray")
    result = chaosray.get("k6") if isinstance(chaosray, dict) else None
    if not isinstance(result, dict):
        entry = next(
            (
                e
                for phase, e in iter_entries(journal)
                if phase == "control" and activity_name(e) == K6_RUN_NAME
            ),
            None,
        )
        result = entry.get("output") if entry else None
    if not isinstance(result, dict):
        return None
    windows = [
        _window(w, origin) for w in result.get("downtime_windows") or [] if isinstance(w, dict)
    ]
    thresholds = result.get("thresholds")
    return {
        "status": result.get("status"),
        "mode": result.get("mode"),
        "exit_code": result.get("exit_code"),
        "exit_reason": result.get("exit_reason"),
        "requests": result.get("requests"),
        "failed": result.get("failed"),
        "success_rate": number(result.get("success_rate")),
        "rate_per_s": number(result.get("rate_per_s")),
        "latency_ms": {
            key: number((result.get("latency_ms") or {}).get(key))
            for key in ("p50", "p95", "p99", "avg", "max")
        },
        "thresholds": {str(k): bool(v) for k, v in (thresholds or {}).items()}
        if isinstance(thresholds, dict)
        else {},
        "thresholds_ok": result.get("thresholds_ok"),
        "downtime_windows": windows,
        "total_downtime_s": number(result.get("total_downtime_s")),
        "longest_outage_s": number(result.get("longest_outage_s")),
        **_outage_figures(result, origin),
        "dropped_iterations": result.get("dropped_iterations"),
        "max_vus": result.get("max_vus"),
        "timeout_s": number(result.get("timeout_s")),
        "timeline_keyed_by": result.get("timeline_keyed_by") or "completion time",
        "started_at": iso(number(result.get("started_at"))),
        "ended_at": iso(number(result.get("ended_at"))),
        "error": result.get("error"),
        "timeline": result.get("timeline") if isinstance(result.get("timeline"), list) else [],
    }


def _recovery(journal: dict[str, Any]) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    for phase, entry in iter_entries(journal):
        base = {
            "activity": activity_name(entry),
            "func": func_of(entry),
            "phase": phase,
            "status": _entry_status(entry),
        }
        if entry.get("status") != "succeeded" or not isinstance(entry.get("output"), dict):
            error = last_error_line(entry)
            metric = legacy_recovery_metric(short_func(entry))
            if RECOVERY_TIMEOUT in "".join(str(x) for x in entry.get("exception") or []):
                metric = metric or "recovery_s"
            if metric is None:
                continue
            figures.append(
                {
                    **base,
                    "metric": metric,
                    "primary": True,
                    "seconds": None,
                    "since": None,
                    "since_source": None,
                    "recovered_at": None,
                    "error": error or "no result",
                }
            )
            continue
        for item in entry_blocks(entry)["recoveries"]:
            figures.append(
                {
                    **base,
                    "metric": item["metric"],
                    "primary": bool(item["primary"]),
                    "seconds": number(item["seconds"]),
                    "since": item["since"],
                    "since_source": item["since_source"],
                    "recovered_at": item["recovered_at"],
                    "error": None,
                }
            )
    return figures


def _key_recovery(figures: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The slowest primary recovery of the method (or the hypothesis after it);
    a primary recovery that failed wins, since it never recovered in time."""
    candidates = [f for f in figures if f["primary"] and f["phase"] in KEY_RECOVERY_PHASES]
    if not candidates:
        return None
    failed = [f for f in candidates if f["seconds"] is None]
    chosen = failed[0] if failed else max(candidates, key=lambda f: f["seconds"])
    return {
        "activity": chosen["activity"],
        "metric": chosen["metric"],
        "seconds": chosen["seconds"],
        "status": chosen["status"],
    }


def _disruptions(journal: dict[str, Any], origin: float | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def add(entry: dict[str, Any], item: dict[str, Any]) -> None:
        at_epoch = epoch(item.get("at"))
        found.append(
            {
                "activity": activity_name(entry),
                "func": func_of(entry),
                "kind": item.get("kind"),
                "pod": item.get("pod"),
                "node": item.get("node"),
                "at": iso(at_epoch) if at_epoch is not None else None,
                "at_epoch": at_epoch,
                "at_source": item.get("at_source"),
                "offset_s": _offset(at_epoch, origin),
                "status": item.get("status", "done"),
                "details": dict(item.get("details") or {}),
            }
        )

    for phase, entry in iter_entries(journal):
        if phase != "method":
            continue
        if entry.get("status") == "succeeded" and isinstance(entry.get("output"), dict):
            for item in entry_blocks(entry)["disruptions"]:
                add(entry, dict(item))
            continue
        # A disruptive action that failed: its disruption is that it was tried.
        kind = _disruptive_kind(entry)
        if kind is not None:
            error = last_error_line(entry) or "no result"
            add(entry, {"kind": kind, "at": entry.get("start"), "at_source": "client",
                        "status": _entry_status(entry), "details": {"error": error}})  # fmt: skip
    found.sort(key=lambda d: (d["at_epoch"] is None, d["at_epoch"] or 0.0))
    return found


def _disruptive_kind(entry: dict[str, Any]) -> str | None:
    """The kind of disruption a failed method action was attempting: an
    action of a chaosray ``actions`` module that deletes, evicts, drains or
    cordons (its function's name says which)."""
    module = str(provider_of(entry).get("module") or "")
    func = short_func(entry) or ""
    if not (module.startswith("chaosray.") and module.endswith(".actions")):
        return None
    for word, kind in (("drain", "drain"), ("cordon", "cordon"), ("evict", "evict"),
                       ("delete", "delete")):  # fmt: skip
        if func.startswith(f"{word}_") and not func.startswith("uncordon"):
            return kind
    return None


def _pod_events(journal: dict[str, Any], origin: float | None) -> tuple[list[Any], dict[str, Any]]:
    chaosray = journal.get("chaosray")
    timeline = chaosray.get("timeline") if isinstance(chaosray, dict) else None
    if not isinstance(timeline, dict):
        entry = next(
            (
                e
                for phase, e in iter_entries(journal)
                if phase == "control" and activity_name(e) == TIMELINE_RUN_NAME
            ),
            None,
        )
        timeline = entry.get("output") if entry else None
    if not isinstance(timeline, dict):
        return [], {}
    events = []
    for event in timeline.get("events") or []:
        if not isinstance(event, dict):
            continue
        t = number(event.get("t"))
        events.append(
            {
                "t": t,
                "time": iso(t),
                "offset_s": _offset(t, origin),
                "api_time": event.get("api_time"),
                "group": event.get("group"),
                "pod": event.get("pod"),
                "event": event.get("event"),
                "node": event.get("node"),
                "detail": dict(event.get("detail") or {}),
            }
        )
    events.sort(key=lambda e: (e["t"] is None, e["t"] or 0.0))
    errors = timeline.get("errors")
    return events, dict(errors) if isinstance(errors, dict) else {}


def _watched(journal: dict[str, Any]) -> list[str]:
    """What the timeline control watched (pod groups, endpoints, nodes)."""
    chaosray = journal.get("chaosray")
    timeline = chaosray.get("timeline") if isinstance(chaosray, dict) else None
    if not isinstance(timeline, dict):
        return []
    watched = timeline.get("watched")
    if isinstance(watched, list):
        return [str(w) for w in watched]
    return sorted(str(g) for g in timeline.get("groups") or {})


def _budget(
    objective: slo.Slo,
    availability: dict[str, Any],
    points: list[dict[str, Any]],
    disruptions: list[dict[str, Any]],
    *,
    counted_slow: bool,
) -> slo.Budget | None:
    """The error budget the scenario consumed; the burn rate over the
    per-second points from the first disruption's second on."""
    if not availability.get("requests"):
        return None
    first = next((d["at_epoch"] for d in disruptions if d["at_epoch"] is not None), None)
    during = [
        p
        for p in points
        if first is not None and (p.get("second") or 0) + int(p.get("step") or 1) > first
    ]
    slow = sum(int(p.get("slow") or 0) for p in points) if counted_slow else None
    during_requests = sum(int(p.get("ok") or 0) + int(p.get("failed") or 0) for p in during)
    during_bad = sum(int(p.get("failed") or 0) + int(p.get("slow") or 0) for p in during)
    span = (
        (during[-1]["second"] + int(during[-1].get("step") or 1)) - first
        if during and first is not None
        else None
    )
    span_all = (
        points[-1]["second"] + int(points[-1].get("step") or 1) - points[0]["second"]
        if points
        else None
    )
    requests = availability.get("requests")

    def measured(slow_requests: int | None, bad: int | None) -> slo.Budget:
        return slo.budget(
            objective,
            interval_s=span_all / requests if span_all and requests else None,
            requests=requests,
            failed=availability.get("failed"),
            failure_equivalent_downtime_s=availability.get("failure_equivalent_downtime_s"),
            p99_ms=(availability.get("latency_ms") or {}).get("p99"),
            slow_requests=slow_requests,
            during_requests=during_requests if during else None,
            during_bad=bad if during else None,
            during_span_s=span,
        )

    # What the verdict's budget criterion counts: failed requests. Slow ones
    # (the latency objective) are information, the same in report and verdict.
    failed_only = sum(int(p.get("failed") or 0) for p in during)
    budget = measured(None, failed_only)
    with_slow = measured(slow, during_bad)
    informed: dict[str, Any] = {
        **budget,
        "slow_requests": with_slow["slow_requests"],
        "share_with_slow": with_slow["share"] if with_slow["slow_requests"] else None,
    }
    return informed  # type: ignore[return-value]


def _activities(journal: dict[str, Any], origin: float | None) -> list[dict[str, Any]]:
    rows = []
    for phase, entry in iter_entries(journal):
        start, end = epoch(entry.get("start")), epoch(entry.get("end"))
        activity = entry.get("activity") if isinstance(entry.get("activity"), dict) else {}
        assert isinstance(activity, dict)
        rows.append(
            {
                "name": activity_name(entry),
                "type": activity.get("type"),
                "phase": phase,
                "func": func_of(entry) or provider_of(entry).get("type"),
                "status": _entry_status(entry),
                "background": bool(activity.get("background")),
                "start": iso(start),
                "end": iso(end),
                "start_offset_s": _offset(start, origin),
                "duration_s": number(entry.get("duration")),
                "error": None if entry.get(INTERRUPTED_FLAG) else last_error_line(entry),
            }
        )
    return rows


def _with_offsets(points: list[dict[str, Any]], origin: float | None) -> list[dict[str, Any]]:
    out = []
    for point in points:
        second = number(point.get("second"))
        out.append(
            {
                "second": second,
                "offset_s": _offset(second, origin),
                "step": int(point.get("step") or 1),
                **{k: v for k, v in point.items() if k not in ("second", "step")},
            }
        )
    return out


def summarize_experiment(
    journal: dict[str, Any],
    samples: Iterable[dict[str, Any]] | None = None,
    *,
    name: str | None = None,
    cause_horizon_s: float = causes.DEFAULT_HORIZON_S,
) -> dict[str, Any]:
    """Summarize one experiment's journal (as ``chaos run`` wrote it, with
    what our controls and activities add) into a ``chaosray.report.experiment/v1``
    document: title, verdict with its reasons, availability (success rate,
    P50/P95/P99, downtime windows) from the availability monitor (else from
    the samples, else from k6), recovery times, disruptions, the pod event
    timeline, the k6 summary, and per-second series for plots.

    ``samples``: the monitor's per-request JSON lines (``samples_path``),
    already parsed, in any length (read once, bounded memory); they give the
    availability and latency series. ``name``: the experiment's short name
    (default: its title). ``cause_horizon_s``: how far before an outage
    window an event may be to count as its cause (:mod:`chaosray.causes`).
    The error budget (:mod:`chaosray.slo`) is measured against the SLO the
    verdict control recorded (else the defaults). Reads its inputs only; the
    journal is not changed.
    """
    experiment = journal.get("experiment")
    experiment = experiment if isinstance(experiment, dict) else {}
    title = str(experiment.get("title") or name or "untitled experiment")
    started, ended = epoch(journal.get("start")), epoch(journal.get("end"))
    origin = started
    if origin is None:
        times = [epoch(e.get("start")) for _p, e in iter_entries(journal)]
        origin = min((t for t in times if t is not None), default=None)
    duration = number(journal.get("duration"))
    if duration is None and started is not None and ended is not None:
        duration = ended - started

    k6 = _k6(journal, origin)
    monitors = [
        _monitor(entry, dict(measured_block), origin)
        for phase, entry in iter_entries(journal)
        if phase in ("method", "steady_state_after")
        and (measured_block := entry_blocks(entry)["availability"]) is not None
    ]
    objective = objective_of(recorded_criteria(journal))
    slow_over = objective["latency_p99_ms"]
    series = (
        series_from_samples(samples, slow_over_s=slow_over / 1000.0 if slow_over else None)
        if samples is not None
        else None
    )

    measured = [m for m in monitors if m["requests"]]
    primary: dict[str, Any] | None = None
    if measured:
        with_samples = [m for m in measured if m["samples_path"]]
        pool = with_samples if series is not None and len(with_samples) == 1 else measured
        primary = max(pool, key=lambda m: m["requests"])
        availability = _availability_from("monitor", primary, primary["activity"])
    elif series is not None and series.stats is not None and series.stats.total:
        summary = series.stats.summary()
        block = {
            **summary,
            "latency_ms": _latency_ms_from_s(summary["latency_s"]),
            "downtime_windows": [_window(w, origin) for w in summary["downtime_windows"]],
            **_outage_figures(summary, origin),
        }
        availability = _availability_from("samples", block, None)
    elif k6 is not None and k6.get("requests"):
        block = {**k6, "latency_ms": {k: k6["latency_ms"][k] for k in ("p50", "p95", "p99", "max")}}
        availability = _availability_from("k6", block, K6_RUN_NAME)
    else:
        availability = _availability_from("none", {}, None)

    if series is not None and series.samples:
        availability_points = _with_offsets(series.availability(), origin)
        availability_source = "samples"
        latency_points = _with_offsets(series.latency(), origin)
    elif primary is not None:
        availability_points = _with_offsets(primary["timeline"], origin)
        availability_source = "monitor"
        latency_points = []
    elif k6 is not None and k6["timeline"]:
        availability_points = _with_offsets(k6["timeline"], origin)
        availability_source = "k6"
        latency_points = []
    else:
        availability_points, availability_source, latency_points = [], "none", []
    if k6 is not None:
        del k6["timeline"]

    recovery = _recovery(journal)
    events, event_errors = _pod_events(journal, origin)
    disruptions = _disruptions(journal, origin)
    budget = _budget(objective, availability, availability_points, disruptions,
                     counted_slow=availability_source == "samples")  # fmt: skip
    windows = [{**w, "kind": "outage"} for w in availability.get("outage_windows") or []] or [
        {**w, "kind": "downtime"} for w in availability.get("downtime_windows") or []
    ]
    watched = _watched(journal)
    attributed = causes.attribute(
        windows,
        events + causes.disruption_events(disruptions),
        cause_horizon_s,
        watched=watched or None,
    )
    for item in attributed:
        item["start_offset_s"] = _offset(item["start"], origin)
        item["end_offset_s"] = _offset(item["end"], origin)
    return {
        "schema": EXPERIMENT_SCHEMA,
        "name": name or title,
        "title": title,
        "description": experiment.get("description"),
        "tags": [str(t) for t in experiment.get("tags") or []],
        "journal_status": journal.get("status"),
        "deviated": bool(journal.get("deviated")),
        "started": iso(started),
        "ended": iso(ended),
        "duration_s": duration,
        "origin": origin,
        "verdict": judge(journal),
        "availability": availability,
        "monitors": [{k: v for k, v in m.items() if k != "timeline"} for m in monitors],
        "availability_sources": availability_sources(monitors, k6),
        "recovery": recovery,
        "key_recovery": _key_recovery(recovery),
        "disruptions": disruptions,
        "budget": budget,
        "outage_causes": {
            "horizon_s": cause_horizon_s,
            "windows": attributed,
            "watched": watched,
        },
        "pod_events": events,
        "pod_event_errors": event_errors,
        "k6": k6,
        "activities": _activities(journal, origin),
        "series": {
            "availability": {"source": availability_source, "points": availability_points},
            "latency": {
                "source": "samples" if latency_points else "none",
                "points": latency_points,
            },
            "samples": series.samples if series is not None else None,
        },
    }
