"""What preceded each outage, and the known patterns its evidence shows.

Inputs are what the report already holds: outage windows (epoch ``start`` /
``end``, and ``failures_by_status``: the failed requests by HTTP status or
by what happened instead, :mod:`chaosray.metrics`) and events, each ``{"t":
epoch s, "group", "pod", "event", "node", "detail"}`` from the timeline
control (pods, the Service's endpoints, nodes, Ray's node and Serve proxy
states) plus the experiment's own disruptions.

For each window: the events in ``[start - horizon, start)`` nearest first,
each with its ``lag_s`` (how long before the window it happened); the events
inside the window with their offset from its start; ``nearest_event``, a
one-line account of the nearest preceding event ("began 0.4 s after pod w-1
not_ready; endpoint of w-1 removed 2.1 s later"), which is what came before,
not what caused it; the **hints**: the rules of :data:`RULES` whose pattern
the observed events show, each naming the events it saw (``evidence``) and
what it saw (``seen``); ``unknown``: the rules whose pattern was partly seen
but whose deciding evidence was not observed (an endpoint removal the watch
never saw, a window that carries no status codes); and ``cause``, the fired
hints in one line, or None when no rule fired. A window with no event before
it within the horizon says so.

Pure: data in, data out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
# The answers KubeRay's issue describes while a new head recovers (gateway
# errors: no backend answered), as metrics.failure_kind names them.
HEAD_RESTART_STATUSES = ("502", "503")
# Timeline groups of the reference experiments (chaosray/experiments/source/shared.py).
HEAD_GROUP = "head"
WORKERS_GROUP = "workers"

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
class Finding:
    """What a rule observed: the events it rests on and one line saying what
    was seen. ``decided`` False: the pattern was partly seen, but what would
    decide it was not observed (the window's ``unknown``)."""

    events: list[dict[str, Any]]
    seen: str
    decided: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """A known pattern: ``matches`` (the window, every event in time order)
    returns a :class:`Finding` when the observed events show it (None when
    they do not); the hint ``text`` names it and ``reference`` says where it
    is known from."""

    name: str
    text: str
    reference: str
    matches: Callable[[dict[str, Any], list[dict[str, Any]]], Finding | None]


def _is(event: dict[str, Any], group: str, *names: str) -> bool:
    return event.get("group") == group and event.get("event") in names


def _before(window: dict[str, Any], events: list[dict[str, Any]], span: float) -> list[Any]:
    start = window["start"]
    return [e for e in events if start - span <= e["t"] <= window["end"]]


def _at(event: dict[str, Any], window: dict[str, Any]) -> str:
    offset = event["t"] - window["start"]
    return f"{describe(event)} at {offset:+.1f} s"


def _statuses(window: dict[str, Any]) -> dict[str, int] | None:
    """The window's failed requests by status, or None when it carries no
    status codes (none recorded, or only "unknown")."""
    counts = window.get("failures_by_status")
    if not isinstance(counts, dict):
        return None
    known = {str(k): int(v) for k, v in counts.items() if k != "unknown" and v}
    return known or None


def _head_pods(events: list[dict[str, Any]]) -> set[Any]:
    return {e.get("pod") for e in events if e.get("group") == HEAD_GROUP}


def _head_replaced(
    window: dict[str, Any], events: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    """A head pod really replaced shortly before (or while) requests failed:
    a head pod's deletion (the timeline's ``deletion_requested`` or ``gone``,
    or chaosray's own delete or eviction of a head pod), then a head pod
    ``created`` (a new pod: a new name, or the same name with a new UID,
    which the timeline reports as ``gone`` then ``created``), then that pod
    ``ready``. A Ray node turning ALIVE or a readiness flap is no replacement."""
    heads = _head_pods(events)
    deletions = [
        e for e in events
        if _is(e, HEAD_GROUP, "deletion_requested", "gone")
        or (_is(e, "disruption", "delete", "evict") and e.get("pod") in heads)
    ]  # fmt: skip
    if not deletions:
        return None
    for ready in reversed(events):  # the latest replacement first
        if not (_is(ready, HEAD_GROUP, "ready")
                and window["start"] - RECENT_S <= ready["t"] <= window["end"]):  # fmt: skip
            continue
        created = [e for e in events if _is(e, HEAD_GROUP, "created")
                   and e.get("pod") == ready.get("pod") and e["t"] <= ready["t"]]  # fmt: skip
        for new in reversed(created):
            deleted = [d for d in deletions if d["t"] <= new["t"]]
            if deleted:
                return deleted[-1], new, ready
    return None


def _head_restart_5xx(window: dict[str, Any], events: list[dict[str, Any]]) -> Finding | None:
    replaced = _head_replaced(window, events)
    if replaced is None:
        return None
    deleted, new, ready = replaced
    where = (
        f"{_at(deleted, window)}, new head pod {new.get('pod')} created at "
        f"{new['t'] - window['start']:+.1f} s and Ready at {ready['t'] - window['start']:+.1f} s"
    )
    statuses = _statuses(window)
    if statuses is None:
        return Finding(list(replaced), f"{where}; the window carries no status codes", False)
    gateway = {k: v for k, v in statuses.items() if k in HEAD_RESTART_STATUSES}
    if not gateway:
        return None  # the requests failed otherwise (timeouts, resets): not this pattern
    counts = ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items()))
    return Finding(list(replaced), f"{where}; failed requests: {counts}",
                   extra={"statuses": statuses})  # fmt: skip


def _zombie_after_head_restart(
    window: dict[str, Any], events: list[dict[str, Any]]
) -> Finding | None:
    # A worker went NotReady after the head pod went NotReady or away, and the timeline did
    # not see it Ready again (nor gone) by the window's end.
    heads = [e for e in events if _is(e, HEAD_GROUP, "deletion_requested", "gone", "not_ready")]
    if not heads:
        return None
    for event in events:
        if not (_is(event, WORKERS_GROUP, "not_ready") and heads[0]["t"] <= event["t"]
                and event["t"] <= window["end"]):  # fmt: skip
            continue
        later = [e for e in events if e.get("pod") == event.get("pod")
                 and _is(e, WORKERS_GROUP, "ready", "gone", "deletion_requested")
                 and event["t"] < e["t"] <= window["end"]]  # fmt: skip
        if later:
            continue
        head = [h for h in heads if h["t"] <= event["t"]][-1]
        seen = (
            f"{_at(head, window)}; {_at(event, window)}, not seen Ready again by the "
            f"window's end ({window['end'] - event['t']:.1f} s later)"
        )
        return Finding([head, event], seen)
    return None


def _gcs_stop_after_redis_primary(
    window: dict[str, Any], events: list[dict[str, Any]]
) -> Finding | None:
    # chaosray.redis.actions.delete_redis_pod puts the role into its
    # disruption block's details.
    primary = [
        e
        for e in _before(window, events, RECENT_S)
        if e.get("group") == "disruption" and (e.get("detail") or {}).get("role") == "primary"
    ]
    for loss in primary:
        for head in events:
            if _is(head, HEAD_GROUP, "not_ready") and 0 <= head["t"] - loss["t"] <= GCS_STOP_S:
                seen = (
                    f"{_at(loss, window)} (the Redis primary); {_at(head, window)}, "
                    f"{head['t'] - loss['t']:.1f} s later"
                )
                return Finding([loss, head], seen)
    return None


def _terminating_endpoint(window: dict[str, Any], events: list[dict[str, Any]]) -> Finding | None:
    # A pod was being deleted (or its endpoint terminating) yet still an
    # endpoint when the window began: requests reached a pod shutting down.
    # Proof is the removal seen after the window began; a removal the watch
    # never saw proves nothing (unknown).
    start = window["start"]
    unknown: Finding | None = None
    for event in events:
        if event["t"] > start or event["t"] < start - RECENT_S:
            continue
        dying = _is(event, WORKERS_GROUP, "deletion_requested") or _is(
            event, "endpoints", "terminating"
        )
        if not dying:
            continue
        pod = event.get("pod")
        if not window.get("endpoints_watched"):
            unknown = unknown or Finding(
                [event], f"{_at(event, window)}; the Service's endpoints were not watched", False
            )
            continue
        removed = [
            e
            for e in events
            if e.get("pod") == pod
            and _is(e, "endpoints", "removed", "not_ready")
            and e["t"] >= event["t"]
        ]
        if not removed:
            unknown = unknown or Finding(
                [event],
                f"{_at(event, window)}; the watch saw no removal of its endpoint by the "
                "window's end",
                False,
            )
            continue
        if removed[0]["t"] > start:
            seen = f"{_at(event, window)}; {_at(removed[0], window)}, after the window began"
            return Finding([event, removed[0]], seen)
    return unknown


RULES: tuple[Rule, ...] = (
    Rule(
        "head-restart-5xx",
        "Requests failed with 502/503 right after a new Ray head pod became Ready: KubeRay "
        "reports 502s for a few seconds while the head recovers, even with the Service on "
        "workers only.",
        "https://github.com/ray-project/kuberay/issues/1153",
        _head_restart_5xx,
    ),
    Rule(
        "zombie-worker-after-head-restart",
        "A worker went NotReady after the head pod went NotReady or away, and was not seen "
        "Ready again by "
        "the end of the window. A known cause: a raylet that does not reconnect to the new "
        "GCS stays Running but un-Ready (a zombie) until deleted; the timeline shows only "
        "that it was not Ready again by then.",
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
        "Requests failed while a terminating pod was still an endpoint (its removal was seen "
        "after the window began): without a preStop delay (or a readiness gate) traffic "
        "reaches a pod that is shutting down until the endpoint is removed.",
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
    """One window's preceding events and hints (``events`` in time order,
    each with a number ``t``); ``watched``: the timeline's groups (None:
    those with events)."""
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
        nearest = f"began {before[0]['lag_s']:.1f} s after {before[0]['text']}"
        later = [e for e in preceding[1:] + inside if e["t"] > preceding[0]["t"]]
        if later:
            nearest += f"; {describe(later[0])} {later[0]['t'] - preceding[0]['t']:.1f} s later"
    else:
        nearest = NO_EVENT
        if during:
            nearest += f"; {during[0]['text']} {during[0]['after_start_s']:.1f} s into it"
    nearby = [e for e in events if start - RULE_LOOKBACK_S <= e["t"] <= end]
    hints, unknown = [], []
    for rule in rules:
        found = rule.matches(window, nearby)
        if found is None:
            continue
        item = {
            "rule": rule.name,
            "seen": found.seen,
            "evidence": [_listed(e, at_s=round(e["t"] - start, 3)) for e in found.events],
            **found.extra,
        }
        if found.decided:
            hints.append({**item, "text": rule.text, "reference": rule.reference})
        else:
            unknown.append(item)
    return {
        "kind": window.get("kind", "outage"),
        "start": start,
        "end": end,
        "duration_s": end - start,
        "failures_by_status": dict(window.get("failures_by_status") or {}),
        "nearest_event": nearest,
        "cause": "; ".join(f"{h['rule']}: {h['seen']}" for h in hints) or None,
        "preceding": before,
        "inside": during,
        "hints": hints,
        "unknown": unknown,
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
