"""A cause for every outage: the events that preceded a window, and hints.

Inputs are what the report already holds: outage windows (epoch ``start`` /
``end``) and events, each ``{"t": epoch s, "group", "pod", "event", "node",
"detail"}`` from the timeline control (pods, the Service's endpoints, nodes,
Ray's node and Serve proxy states) plus the experiment's own disruptions.

For each window: the events in ``[start - horizon, start)`` nearest first,
each with its ``lag_s`` (how long before the window it happened); the events
inside the window with their offset from its start; a one-line ``cause``
("began 0.4 s after pod w-1 not_ready; endpoint of w-1 removed 2.1 s
later"), and the **hints** of :data:`RULES` that match, each naming what is
known about that pattern. A window with no event before it within the
horizon says so.

Pure: data in, data out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__: list[str] = []  # pure logic, no activities

DEFAULT_HORIZON_S = 30.0
MAX_LISTED = 8  # events listed per window and side (the nearest ones)
MAX_WINDOWS = 50  # windows attributed per experiment (the longest ones)
# How recent an event must be for a rule to tie it to a window (a head
# restart, a Redis primary's loss, a pod's deletion).
RECENT_S = 60.0
# How soon after a Redis primary change the GCS is known to stop.
GCS_STOP_S = 30.0
# How far back the rules look (bounds their work on long, busy timelines).
RULE_LOOKBACK_S = 600.0

NO_EVENT = "no event within the horizon before it"


def describe(event: dict[str, Any]) -> str:
    """``pod w-1 not_ready``, ``endpoint of w-1 removed``, ``node n-2 cordoned``."""
    group, subject, what = event.get("group"), event.get("pod"), event.get("event")
    if group == "endpoints":
        return f"endpoint of {subject} {what}"
    if group == "nodes":
        return f"node {subject} {what}"
    if group == "ray":
        return f"Ray {subject} {what}"
    if group == "disruption":
        return f"{what} of {subject}"
    return f"pod {subject} {what}"


@dataclass(frozen=True)
class Rule:
    """A known pattern: when ``matches`` (the window, every event in time
    order), the hint ``text`` names it and ``reference`` says where it is known from."""

    name: str
    text: str
    reference: str
    matches: Callable[[dict[str, Any], list[dict[str, Any]]], bool]


def _is(event: dict[str, Any], group: str, *names: str) -> bool:
    return event.get("group") == group and event.get("event") in names


def _before(window: dict[str, Any], events: list[dict[str, Any]], span: float) -> list[Any]:
    start = window["start"]
    return [e for e in events if start - span <= e["t"] <= window["end"]]


def _head_restarted_before(window: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    # A new head pod became Ready shortly before (or while) requests failed.
    return any(_is(e, "head", "ready") and e["t"] <= window["end"]
               and e["t"] >= window["start"] - RECENT_S
               and any(_is(d, "head", "deletion_requested", "gone", "not_ready")
                       and d["t"] < e["t"] for d in events)
               for e in events)  # fmt: skip


def _zombie_after_head_restart(window: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    # A worker went NotReady after a head restart and was not Ready again by the window's end.
    heads = [e["t"] for e in events if _is(e, "head", "deletion_requested", "not_ready")]
    if not heads:
        return False
    for event in events:
        if _is(event, "workers", "not_ready") and event["t"] >= min(heads) \
                and event["t"] <= window["end"]:  # fmt: skip
            later = [e for e in events if e.get("pod") == event.get("pod")
                     and _is(e, "workers", "ready", "gone", "deletion_requested")
                     and event["t"] < e["t"] <= window["end"]]  # fmt: skip
            if not later:
                return True
    return False


def _gcs_stop_after_redis_primary(window: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    primary = [
        e["t"]
        for e in _before(window, events, RECENT_S)
        if e.get("group") == "disruption" and (e.get("detail") or {}).get("role") == "primary"
    ]
    return any(
        _is(e, "head", "not_ready") and 0 <= e["t"] - t <= GCS_STOP_S
        for t in primary
        for e in events
    )


def _terminating_endpoint(window: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    # A pod was being deleted (or its endpoint terminating) yet still an
    # endpoint when the window began: requests reached a pod shutting down.
    if not window.get("endpoints_watched"):
        return False  # the endpoints were not watched: nothing to say
    start = window["start"]
    for event in events:
        if event["t"] > start:
            continue
        pod = event.get("pod")
        dying = _is(event, "workers", "deletion_requested") or _is(
            event, "endpoints", "terminating"
        )
        if not dying or event["t"] < start - RECENT_S:
            continue
        removed = [
            e["t"]
            for e in events
            if e.get("pod") == pod
            and _is(e, "endpoints", "removed", "not_ready")
            and e["t"] >= event["t"]
        ]
        if not removed or min(removed) > start:
            return True
    return False


RULES: tuple[Rule, ...] = (
    Rule(
        "head-restart-5xx",
        "Requests failed right after a new Ray head became Ready: KubeRay reports 502s "
        "for a few seconds while the head recovers, even with the Service on workers only.",
        "https://github.com/ray-project/kuberay/issues/1153",
        _head_restarted_before,
    ),
    Rule(
        "zombie-worker-after-head-restart",
        "A worker went NotReady after the head restart and was not Ready again: a raylet "
        "that never reconnects to the new GCS stays Running but un-Ready (a zombie) until "
        "deleted.",
        "https://github.com/ray-project/ray/issues/64349",
        _zombie_after_head_restart,
    ),
    Rule(
        "gcs-stops-on-redis-primary-change",
        "The head went NotReady within seconds of the Redis primary's loss: Ray's GCS exits "
        "when it loses its Redis primary (GcsRedisFailureDetector) and serves again only "
        "after Sentinel's failover and a head restart.",
        "https://github.com/ray-project/ray/blob/master/src/ray/gcs/gcs_server/"
        "gcs_redis_failure_detector.cc",
        _gcs_stop_after_redis_primary,
    ),
    Rule(
        "terminating-pod-still-an-endpoint",
        "Requests failed while a terminating pod was still an endpoint: without a preStop "
        "delay (or a readiness gate) traffic reaches a pod that is shutting down until the "
        "endpoint is removed.",
        "https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#conditions",
        _terminating_endpoint,
    ),
)


def _listed(event: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "t": event["t"],
        "group": event.get("group"),
        "pod": event.get("pod"),
        "event": event.get("event"),
        "node": event.get("node"),
        "text": describe(event),
        **extra,
    }


def attribute_window(
    window: dict[str, Any],
    events: list[dict[str, Any]],
    horizon_s: float = DEFAULT_HORIZON_S,
    rules: tuple[Rule, ...] = RULES,
    watched: frozenset[str] | None = None,
) -> dict[str, Any]:
    """One window's cause (``events`` in time order, each with a number
    ``t``); ``watched``: the timeline's groups (None: those with events)."""
    start, end = float(window["start"]), float(window["end"])
    if watched is None:
        watched = frozenset(str(e.get("group")) for e in events)
    window = {**window, "start": start, "end": end, "endpoints_watched": "endpoints" in watched}
    preceding = sorted(
        (e for e in events if start - horizon_s <= e["t"] < start), key=lambda e: start - e["t"]
    )
    inside = [e for e in events if start <= e["t"] <= end]
    before = [_listed(e, lag_s=round(start - e["t"], 3)) for e in preceding[:MAX_LISTED]]
    during = [_listed(e, after_start_s=round(e["t"] - start, 3)) for e in inside[:MAX_LISTED]]
    if before:
        cause = f"began {before[0]['lag_s']:.1f} s after {before[0]['text']}"
        later = [e for e in preceding[1:] + inside if e["t"] > preceding[0]["t"]]
        if later:
            cause += f"; {describe(later[0])} {later[0]['t'] - preceding[0]['t']:.1f} s later"
    else:
        cause = NO_EVENT
        if during:
            cause += f"; {during[0]['text']} {during[0]['after_start_s']:.1f} s into it"
    nearby = [e for e in events if start - RULE_LOOKBACK_S <= e["t"] <= end]
    hints = [
        {"rule": r.name, "text": r.text, "reference": r.reference}
        for r in rules
        if r.matches(window, nearby)
    ]
    return {
        "kind": window.get("kind", "outage"),
        "start": start,
        "end": end,
        "duration_s": end - start,
        "cause": cause,
        "preceding": before,
        "inside": during,
        "hints": hints,
    }


def disruption_events(disruptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The experiment's own disruptions as events (what chaosray did)."""
    out = []
    for item in disruptions:
        t = item.get("at_epoch")
        if not isinstance(t, int | float) or item.get("status") not in ("done", None):
            continue
        subject = item.get("pod") or item.get("node")
        out.append(
            {
                "t": float(t),
                "group": "disruption",
                "pod": subject,
                "event": item.get("kind"),
                "node": item.get("node"),
                "detail": dict(item.get("details") or {}),
            }
        )
    return out


def attribute(
    windows: list[dict[str, Any]],
    events: list[dict[str, Any]],
    horizon_s: float = DEFAULT_HORIZON_S,
    watched: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Every window with a start and an end, attributed (the longest
    :data:`MAX_WINDOWS`, returned in time order); ``watched``: the
    timeline's groups (None: those with events)."""
    timed = sorted((e for e in events if isinstance(e.get("t"), int | float)), key=lambda e: e["t"])
    usable = [
        w for w in windows
        if isinstance(w.get("start"), int | float) and isinstance(w.get("end"), int | float)
    ]  # fmt: skip
    longest = sorted(usable, key=lambda w: w["end"] - w["start"], reverse=True)[:MAX_WINDOWS]
    seen = frozenset(watched) if watched is not None else None
    return [
        attribute_window(w, timed, horizon_s, watched=seen)
        for w in sorted(longest, key=lambda w: w["start"])
    ]
