"""One experiment's journal as a report document
(``chaosray.report.experiment/v1``; every field is described in
``docs/report-schema.md``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chaosray.report.journal import (
    INTERRUPTED_FLAG,
    activity_name,
    bounded_value,
    epoch,
    func_of,
    is_interrupted,
    iso,
    iter_entries,
    last_error_line,
    number,
    provider_of,
    short_func,
    short_value,
)
from chaosray.report.series import series_from_samples

__all__: list[str] = []  # pure logic, no activities

EXPERIMENT_SCHEMA = "chaosray.report.experiment/v1"

MONITOR_FUNC = "monitor_availability"
K6_RUN_NAME = "k6-load"
TIMELINE_RUN_NAME = "pod-timeline"
DELETE_FUNCS = ("delete_pod", "delete_ray_head", "delete_ray_worker", "delete_redis_pod")
# func -> (primary metric, secondary metrics): the figures each recovery probe returns.
RECOVERY_FUNCS: dict[str, tuple[str, tuple[str, ...]]] = {
    "wait_for_ready_pods": ("recovery_s", ("observed_recovery_s",)),
    "wait_for_redis_rejoin": ("recovery_s", ("rejoin_s",)),
    "ray_head_recovery": ("head_ready_s", ("workers_reconnect_s",)),
}
# Phases whose recovery figures can be the experiment's key recovery time.
KEY_RECOVERY_PHASES = ("method", "steady_state_after")


# The journal status the suite gives an experiment it did not run.
SKIPPED = "skipped"


def _reason(
    kind: str, message: str, activity: str | None = None, value: Any = None
) -> dict[str, Any]:
    return {"kind": kind, "message": message, "activity": activity, "value": value}


def _entry_status(entry: dict[str, Any]) -> str:
    if is_interrupted(entry):
        return "interrupted"
    status = entry.get("status")
    return str(status) if status is not None else "unknown"


def _failed_probe_reasons(journal: dict[str, Any]) -> list[dict[str, Any]]:
    reasons = []
    steady = journal.get("steady_states")
    steady = steady if isinstance(steady, dict) else {}
    labels = {
        "before": ("steady_state_before", "before the method"),
        "after": ("steady_state_after", "after the method"),
    }
    for key, (kind, when) in labels.items():
        state = steady.get(key)
        if not isinstance(state, dict):
            continue
        probes = [p for p in state.get("probes") or [] if isinstance(p, dict)]
        failed = [
            p
            for p in probes
            if p.get("tolerance_met") is False or p.get("status") == "failed" or is_interrupted(p)
        ]
        for probe in failed:
            name = activity_name(probe)
            error = last_error_line(probe)
            got = f"error: {error}" if error else f"got {short_value(probe.get('output'))}"
            reasons.append(
                _reason(
                    kind,
                    f"steady-state probe {name!r} not met {when}: {got}",
                    name,
                    bounded_value(probe.get("output")),
                )
            )
        if state.get("steady_state_met") is False and not failed:
            reasons.append(_reason(kind, f"steady state not met {when}"))
    for state in steady.get("during") or []:
        if isinstance(state, dict) and state.get("steady_state_met") is False:
            names = [
                activity_name(p)
                for p in state.get("probes") or []
                if isinstance(p, dict) and p.get("tolerance_met") is False
            ]
            reasons.append(
                _reason(
                    "steady_state_during",
                    "steady state not met during the method"
                    + (f": {', '.join(names)}" if names else ""),
                )
            )
    return reasons


def _evidence(journal: dict[str, Any], k6: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every failure the journal itself shows, with names and values."""
    reasons: list[dict[str, Any]] = []
    status = journal.get("status")
    if status in ("interrupted", "aborted"):
        reasons.append(_reason(status, f"the experiment was {status}"))
    reasons.extend(_failed_probe_reasons(journal))
    for phase, entry in iter_entries(journal):
        if phase.startswith("steady_state"):
            continue
        name = activity_name(entry)
        if name == K6_RUN_NAME and phase == "control":
            continue  # reported from journal["chaosray"]["k6"] below
        where = "rollback" if phase == "rollback" else "activity"
        if is_interrupted(entry):
            reasons.append(
                _reason(
                    f"{where}_interrupted",
                    f"{where} {name!r} was cut off by a signal before it ended",
                    name,
                )
            )
        elif entry.get("status") == "failed":
            error = last_error_line(entry) or "no error message"
            reasons.append(_reason(where, f"{where} {name!r} failed: {error}", name, error))
    if k6 is not None:
        if k6.get("status") == "thresholds_failed":
            failed = sorted(k for k, ok in (k6.get("thresholds") or {}).items() if not ok)
            reasons.append(
                _reason(
                    "k6_thresholds",
                    "k6 thresholds failed: "
                    + (", ".join(failed) or f"exit code {k6.get('exit_code')}"),
                    K6_RUN_NAME,
                    failed,
                )
            )
        elif k6.get("status") == "error":
            error = k6.get("error") or k6.get("exit_reason") or "unknown error"
            reasons.append(_reason("k6_error", f"k6 load error: {error}", K6_RUN_NAME, error))
    if status == "failed" and not reasons:
        reasons.append(_reason("status", "the journal's status is failed"))
    if journal.get("deviated") and not any(r["kind"].startswith("steady_state") for r in reasons):
        reasons.append(_reason("deviated", "the system deviated from its steady state"))
    return reasons


def _verdict(journal: dict[str, Any], evidence: list[dict[str, Any]]) -> dict[str, Any]:
    status = journal.get("status")
    chaosray = journal.get("chaosray")
    given = chaosray.get("verdict") if isinstance(chaosray, dict) else None
    if status == SKIPPED:  # the suite did not run it: neither passed nor failed
        reasons = (given or {}).get("reasons") or ["not run"]
        return {
            "passed": False,
            "skipped": True,
            "source": "suite",
            "reasons": [_reason("skipped", str(text)) for text in reasons],
            "evidence": [],
        }
    if isinstance(given, dict) and isinstance(given.get("passed"), bool):
        reasons = [_reason("verdict", str(text)) for text in given.get("reasons") or [] if text]
        passed = bool(given["passed"])
        if status in ("interrupted", "aborted") and not any(
            status in r["message"] for r in reasons
        ):
            reasons.append(_reason(status, f"the experiment was {status}"))
        passed = passed and status not in ("interrupted", "aborted")
        if not passed and not reasons:
            reasons = list(evidence) or [_reason("verdict", "the verdict control failed it")]
        return {
            "passed": passed,
            "skipped": False,
            "source": "chaosray.verdict",
            "reasons": [] if passed else reasons,
            "evidence": evidence,
        }
    passed = not evidence and status == "completed"
    reasons = list(evidence)
    if not passed and not reasons:
        reasons.append(_reason("status", f"the journal's status is {status!r}"))
    return {
        "passed": passed,
        "skipped": False,
        "source": "journal",
        "reasons": [] if passed else reasons,
        "evidence": evidence,
    }


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


def _monitor(entry: dict[str, Any], origin: float | None) -> dict[str, Any]:
    output = entry.get("output") if isinstance(entry.get("output"), dict) else {}
    assert isinstance(output, dict)
    latency = output.get("latency_s")
    return {
        "activity": activity_name(entry),
        "status": _entry_status(entry),
        "url": output.get("url"),
        "rate_per_s": number(output.get("rate_per_s")),
        "requests": output.get("requests"),
        "failed": output.get("failed"),
        "success_rate": number(output.get("success_rate")),
        "latency_ms": _latency_ms_from_s(latency),
        "latency_exact": latency.get("exact") if isinstance(latency, dict) else None,
        "downtime_windows": [
            _window(w, origin) for w in output.get("downtime_windows") or [] if isinstance(w, dict)
        ],
        "total_downtime_s": number(output.get("total_downtime_s")),
        "longest_outage_s": number(output.get("longest_outage_s")),
        **_outage_figures(output, origin),
        "recovered_at": iso(number(output.get("recovered_at"))),
        "still_down": bool(output.get("still_down")),
        "errors": dict(output.get("errors") or {}),
        "samples_path": output.get("samples_path"),
        "error": last_error_line(entry),
    }


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
        "timeline_keyed_by": result.get("timeline_keyed_by") or "completion time",
        "started_at": iso(number(result.get("started_at"))),
        "ended_at": iso(number(result.get("ended_at"))),
        "error": result.get("error"),
        "timeline": result.get("timeline") if isinstance(result.get("timeline"), list) else [],
    }


def _recovery(journal: dict[str, Any]) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    for phase, entry in iter_entries(journal):
        func = short_func(entry)
        output = entry.get("output")
        if func in RECOVERY_FUNCS:
            primary, secondary = RECOVERY_FUNCS[func]
        elif isinstance(output, dict) and number(output.get("recovery_s")) is not None:
            primary, secondary = "recovery_s", ()
        else:
            continue
        base = {
            "activity": activity_name(entry),
            "func": func_of(entry),
            "phase": phase,
            "status": _entry_status(entry),
        }
        if not isinstance(output, dict) or entry.get("status") != "succeeded":
            figures.append(
                {
                    **base,
                    "metric": primary,
                    "primary": True,
                    "seconds": None,
                    "since": None,
                    "since_source": None,
                    "recovered_at": None,
                    "error": last_error_line(entry) or "no result",
                }
            )
            continue
        detail = output.get("head") if func == "ray_head_recovery" else output
        detail = detail if isinstance(detail, dict) else {}
        for metric in (primary, *secondary):
            if metric not in output:
                continue
            figures.append(
                {
                    **base,
                    "metric": metric,
                    "primary": metric == primary,
                    "seconds": number(output.get(metric)),
                    "since": detail.get("since"),
                    "since_source": detail.get("since_source"),
                    "recovered_at": detail.get("recovered_at"),
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

    def add(entry: dict[str, Any], kind: str, at: Any, **fields: Any) -> None:
        at_epoch = epoch(at)
        found.append(
            {
                "activity": activity_name(entry),
                "func": func_of(entry),
                "kind": kind,
                "pod": fields.pop("pod", None),
                "node": fields.pop("node", None),
                "at": iso(at_epoch) if at_epoch is not None else None,
                "at_epoch": at_epoch,
                "offset_s": _offset(at_epoch, origin),
                "status": fields.pop("status", "done"),
                "details": fields,
            }
        )

    for phase, entry in iter_entries(journal):
        if phase != "method":
            continue
        func = short_func(entry)
        if func not in (*DELETE_FUNCS, "delete_pods_sequentially", "drain_node", "cordon_node"):
            continue
        output = entry.get("output")
        kind = {"drain_node": "drain", "cordon_node": "cordon"}.get(func or "", "delete")
        if not isinstance(output, dict) or entry.get("status") != "succeeded":
            error = last_error_line(entry) or "no result"
            add(entry, kind, entry.get("start"), status=_entry_status(entry), error=error)
            continue
        dry = bool(output.get("dry_run"))
        if func in DELETE_FUNCS:
            add(
                entry,
                "delete",
                output.get("deleted_at") or entry.get("start"),
                pod=output.get("pod"),
                node=output.get("node"),
                status="dry_run" if dry else "done",
                grace_period=output.get("grace_period"),
            )
        elif func == "delete_pods_sequentially":
            for step in output.get("steps") or []:
                if not isinstance(step, dict):
                    continue
                status = "dry_run" if dry else ("skipped" if step.get("skipped") else "done")
                add(
                    entry,
                    "delete",
                    step.get("deleted_at"),
                    pod=step.get("pod"),
                    node=step.get("node"),
                    status=status,
                    step=step.get("step"),
                    min_ready_seen=step.get("min_ready_seen"),
                    check=step.get("check"),
                    skipped=step.get("skipped"),
                )
        elif func == "drain_node":
            node = output.get("node")
            add(entry, "drain", entry.get("start"), node=node, status="dry_run" if dry else "done")
            for pod in output.get("pods") or []:
                if not isinstance(pod, dict):
                    continue
                add(
                    entry,
                    "evict",
                    pod.get("evicted_at"),
                    pod=pod.get("pod"),
                    node=node,
                    status="dry_run" if dry else ("done" if pod.get("evicted_at") else "pending"),
                    refusals=pod.get("refusals"),
                    terminated_s=number(pod.get("terminated_s")),
                )
        else:  # cordon_node
            add(entry, "cordon", entry.get("start"), node=output.get("node"),
                status="dry_run" if dry else "done")  # fmt: skip
    found.sort(key=lambda d: (d["at_epoch"] is None, d["at_epoch"] or 0.0))
    return found


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
            }
        )
    events.sort(key=lambda e: (e["t"] is None, e["t"] or 0.0))
    errors = timeline.get("errors")
    return events, dict(errors) if isinstance(errors, dict) else {}


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
    (default: its title). Reads its inputs only; the journal is not changed.
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
    evidence = _evidence(journal, k6)
    monitors = [
        _monitor(entry, origin)
        for phase, entry in iter_entries(journal)
        if short_func(entry) == MONITOR_FUNC and phase in ("method", "steady_state_after")
    ]
    series = series_from_samples(samples) if samples is not None else None

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
        entry = next(
            e for _p, e in iter_entries(journal)
            if short_func(e) == MONITOR_FUNC and activity_name(e) == primary["activity"]
        )  # fmt: skip
        output = entry.get("output") or {}
        availability_points = _with_offsets(list(output.get("timeline") or []), origin)
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
        "verdict": _verdict(journal, evidence),
        "availability": availability,
        "monitors": monitors,
        "recovery": recovery,
        "key_recovery": _key_recovery(recovery),
        "disruptions": _disruptions(journal, origin),
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
