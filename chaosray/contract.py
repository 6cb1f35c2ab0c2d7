"""The output contract between activities and their readers.

An activity's output is a dict whose own fields are its own business. What
the judge (:mod:`chaosray.judge`), the report and the suite read from it are
**blocks** under three well-known keys, each of a shape defined here:

- ``output["disruptions"]``: a list of :class:`Disruption`, what the activity
  broke (a pod deleted, evicted, a node drained or cordoned);
- ``output["recoveries"]``: a list of :class:`Recovery`, how long something
  took to come back;
- ``output["availability"]``: one :class:`Availability`, what users saw
  while the activity measured (requests, failures, latency, outages).

A new probe (a Prometheus error-ratio probe, say) that returns an
``availability`` block feeds the verdict, the report's table and its plots
with no edit anywhere else. Readers take a block by its shape
(:func:`blocks_of`), never by the name of the function that produced it.

Journals written before these blocks existed (the committed fixtures under
``tests/data/journals``) are read through one fallback, :func:`legacy_blocks`,
which derives the blocks from the outputs of the activities that existed
then. No new activity is ever added to it.

Pure: data in, data out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

from chaoslib.exceptions import ActivityFailed

__all__: list[str] = []  # types and pure helpers, not activities

DISRUPTIONS_KEY = "disruptions"
RECOVERIES_KEY = "recoveries"
AVAILABILITY_KEY = "availability"


class Disruption(TypedDict):
    """One thing an action broke."""

    kind: Literal["delete", "evict", "drain", "cordon"]
    pod: str | None
    node: str | None
    at: Any  # when: ISO-8601 text or epoch seconds
    # Where ``at`` comes from: "api" (the API server's own timestamp, such as
    # a deletionTimestamp) or "client" (chaosray's clock when it acted).
    at_source: str
    status: Literal["done", "dry_run", "skipped", "pending", "failed"]
    details: dict[str, Any]


class Recovery(TypedDict):
    """One recovery figure."""

    metric: str  # the output field that holds it, e.g. "recovery_s"
    seconds: float | None  # None: it did not recover in time
    since: str | None  # ISO-8601: the instant the clock started
    since_source: str | None  # what that instant is, e.g. "delete of pod w-1"
    recovered_at: str | None  # ISO-8601
    primary: bool  # the figure that stands for this activity's recovery
    # The most it may take (seconds from ``since``), when the activity has one.
    bound_s: NotRequired[float | None]


class Latency(TypedDict, total=False):
    """Latency of successful requests, in seconds."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    exact: bool


class Window(TypedDict, total=False):
    """A stretch of time: epoch seconds."""

    start: float
    end: float
    duration_s: float
    failed_requests: int
    open: bool


class Availability(TypedDict):
    """What users saw (the field definitions: docs/report-schema.md)."""

    requests: int
    failed: int
    success_rate: float | None
    latency_s: Latency
    downtime_windows: list[Window]
    total_downtime_s: float | None
    longest_outage_s: float | None
    failure_equivalent_downtime_s: NotRequired[float | None]
    outage_windows: NotRequired[list[Window]]
    outage_time_s: NotRequired[float | None]
    longest_outage_window_s: NotRequired[float | None]
    still_down: bool
    url: NotRequired[str | None]
    rate_per_s: NotRequired[float | None]
    recovered_at: NotRequired[float | None]
    errors: NotRequired[dict[str, int]]
    samples_path: NotRequired[str | None]
    # The measured span (epoch seconds) and why it ended: "stop_action" (the
    # method's stop step), "duration" (its own cap), "interrupted".
    started_at: NotRequired[float | None]
    ended_at: NotRequired[float | None]
    ended_by: NotRequired[str | None]
    # A request slower than this failed (the source's own request timeout).
    timeout_s: NotRequired[float | None]
    # Per-second points {"second", "ok", "failed"} for the availability plot.
    timeline: NotRequired[list[dict[str, Any]]]


class RecoveryTimeout(ActivityFailed):  # type: ignore[misc]
    """What a recovery probe raises when the thing did not come back in time:
    the journal's exception names it, which tells a reader that this failed
    activity was a recovery that never happened (a figure of None)."""


class Reason(TypedDict):
    """One reason a verdict failed, or one piece of evidence."""

    kind: str
    message: str
    activity: str | None
    value: Any


class Criterion(TypedDict):
    """One row of a scenario's criteria table: a claim, what was measured,
    the bound, the instant it is measured from, and whether it held."""

    id: str  # e.g. "success-rate", "replacement-ready.recovery_s", "disrupted"
    state: Literal["held", "broken", "no evidence"]
    # "activity", "recovery", "availability", "load", or "criterion".
    kind: str
    measured: Any  # the figure (seconds, a rate, a count), None when not measured
    bound: Any  # the limit it is held to, None when it has none
    since: str | None  # ISO-8601: the event it is timed from (the deletion, ...)
    since_source: str | None  # what that event is
    activity: str | None
    message: str


class Criteria(TypedDict):
    """What availability a scenario allows (the verdict control's arguments)."""

    min_success_rate: float | None
    max_downtime_s: float | None
    max_longest_outage_s: float | None
    # The error budget (chaosray.slo): the most of the period's budget the
    # scenario may consume, and the SLO it is measured against.
    max_budget_share: float | None
    slo_target: float | None
    slo_period_days: float | None
    slo_latency_p99_ms: float | None
    # The scenario must disrupt something and measure availability around it:
    # a dry run, a skipped step or a missing measurement is "no evidence".
    disruptive: bool | None
    # What a run whose only shortfalls are "no evidence" is: "failed" (None,
    # the default) or "inconclusive". Neither is a pass.
    no_evidence: str | None


class Verdict(TypedDict):
    """One experiment's pass or fail, with every reason."""

    passed: bool
    skipped: bool
    # "judge": judged from the journal with the criteria its verdict control
    # recorded; "journal": judged with no availability criteria (no verdict
    # control); "recorded": a journal from before the contract, whose
    # control's own verdict is taken as written; "suite": not run.
    source: str
    reasons: list[Reason]
    evidence: list[Reason]  # the journal's failures, criteria aside
    # Every criterion judged, each held, broken or without evidence; the
    # verdict passes only when every one held.
    criteria: NotRequired[list[Criterion]]
    # Not passed, and nothing broke: every shortfall is "no evidence", and
    # the criteria asked for `no_evidence: inconclusive`.
    inconclusive: NotRequired[bool]


class Blocks(TypedDict):
    disruptions: list[Disruption]
    recoveries: list[Recovery]
    availability: Availability | None


AVAILABILITY_REQUIRED = ("requests", "failed", "success_rate", "downtime_windows")


def disruption(
    kind: Literal["delete", "evict", "drain", "cordon"],
    *,
    at: Any,
    at_source: str,
    pod: str | None = None,
    node: str | None = None,
    status: Literal["done", "dry_run", "skipped", "pending", "failed"] = "done",
    **details: Any,
) -> Disruption:
    return {
        "kind": kind,
        "pod": pod,
        "node": node,
        "at": at,
        "at_source": at_source,
        "status": status,
        "details": details,
    }


def recovery(
    metric: str,
    seconds: float | None,
    timing: Mapping[str, Any] | None = None,
    *,
    primary: bool = True,
    bound_s: float | None = None,
) -> Recovery:
    """A Recovery block; ``timing``: a mapping with ``since``, ``since_source``
    and ``recovered_at`` (a recovery probe's output has them); ``bound_s``:
    the most it may take, from ``since``."""
    timing = timing or {}
    block: Recovery = {
        "metric": metric,
        "seconds": seconds,
        "since": timing.get("since"),
        "since_source": timing.get("since_source"),
        "recovered_at": timing.get("recovered_at"),
        "primary": primary,
    }
    if bound_s is not None:
        block["bound_s"] = bound_s
    return block


def availability_of(figures: dict[str, Any]) -> Availability:
    """An Availability block from a dict with the monitor's field names."""
    block: dict[str, Any] = {
        "requests": int(figures.get("requests") or 0),
        "failed": int(figures.get("failed") or 0),
        "success_rate": figures.get("success_rate"),
        "latency_s": dict(figures.get("latency_s") or {}),
        "downtime_windows": list(figures.get("downtime_windows") or []),
        "total_downtime_s": figures.get("total_downtime_s"),
        "longest_outage_s": figures.get("longest_outage_s"),
        "still_down": bool(figures.get("still_down")),
    }
    optional = (
        "failure_equivalent_downtime_s",
        "outage_windows",
        "outage_time_s",
        "longest_outage_window_s",
        "url",
        "rate_per_s",
        "recovered_at",
        "errors",
        "samples_path",
        "timeline",
        "started_at",
        "ended_at",
        "ended_by",
        "timeout_s",
    )
    block.update({key: figures[key] for key in optional if key in figures})
    return block  # type: ignore[return-value]


def _is_disruption(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("kind"), str) and "at" in item


def _is_recovery(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("metric"), str)
        and "seconds" in item
        and (item["seconds"] is None or isinstance(item["seconds"], int | float))
    )


def _is_availability(item: Any) -> bool:
    return isinstance(item, dict) and all(key in item for key in AVAILABILITY_REQUIRED)


def blocks_of(output: Any) -> Blocks:
    """The contract blocks an activity's output carries, by shape; an item of
    the wrong shape is left out (a reader never trusts an output blindly)."""
    out: Blocks = {"disruptions": [], "recoveries": [], "availability": None}
    if not isinstance(output, dict):
        return out
    disruptions = output.get(DISRUPTIONS_KEY)
    if isinstance(disruptions, list):
        out["disruptions"] = [d for d in disruptions if _is_disruption(d)]
    recoveries = output.get(RECOVERIES_KEY)
    if isinstance(recoveries, list):
        out["recoveries"] = [r for r in recoveries if _is_recovery(r)]
    if _is_availability(output.get(AVAILABILITY_KEY)):
        out["availability"] = output[AVAILABILITY_KEY]
    return out


def has_blocks(output: Any) -> bool:
    return isinstance(output, dict) and any(
        key in output for key in (DISRUPTIONS_KEY, RECOVERIES_KEY, AVAILABILITY_KEY)
    )


# --- journals from before the contract ------------------------------------------------

_LEGACY_DELETES = ("delete_pod", "delete_ray_head", "delete_ray_worker", "delete_redis_pod")
_LEGACY_RECOVERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "wait_for_ready_pods": ("recovery_s", ("observed_recovery_s",)),
    "wait_for_redis_rejoin": ("recovery_s", ("rejoin_s",)),
    "ray_head_recovery": ("head_ready_s", ("workers_reconnect_s",)),
}


def legacy_recovery_metric(func: str | None) -> str | None:
    """For a recovery probe of before the contract that failed (no output):
    the figure it would have given."""
    known = _LEGACY_RECOVERIES.get(func or "")
    return known[0] if known else None


def legacy_blocks(func: str | None, output: Any, start: Any) -> Blocks:
    """The blocks of an output written before the contract, derived from the
    activities of that time (``func``: the provider's function name; ``start``:
    the journal entry's start, for disruptions that had no time of their own)."""
    out: Blocks = {"disruptions": [], "recoveries": [], "availability": None}
    if not isinstance(output, dict):
        return out
    dry = bool(output.get("dry_run"))
    done: Literal["done", "dry_run"] = "dry_run" if dry else "done"
    if func == "monitor_availability":
        out["availability"] = availability_of(output)
    elif func in _LEGACY_DELETES:
        out["disruptions"] = [
            disruption(
                "delete",
                at=output.get("deleted_at") or start,
                at_source="client",
                pod=output.get("pod"),
                node=output.get("node"),
                status=done,
                grace_period=output.get("grace_period"),
            )
        ]
    elif func == "delete_pods_sequentially":
        for step in output.get("steps") or []:
            if isinstance(step, dict):
                out["disruptions"].append(
                    disruption(
                        "delete",
                        at=step.get("deleted_at"),
                        at_source="client",
                        pod=step.get("pod"),
                        node=step.get("node"),
                        status="dry_run" if dry else ("skipped" if step.get("skipped") else "done"),
                        step=step.get("step"),
                        min_ready_seen=step.get("min_ready_seen"),
                        check=step.get("check"),
                        skipped=step.get("skipped"),
                    )
                )
    elif func == "drain_node":
        node = output.get("node")
        out["disruptions"].append(
            disruption("drain", at=start, at_source="client", node=node, status=done)
        )
        for pod in output.get("pods") or []:
            if isinstance(pod, dict):
                out["disruptions"].append(
                    disruption(
                        "evict",
                        at=pod.get("evicted_at"),
                        at_source="client",
                        pod=pod.get("pod"),
                        node=node,
                        status="dry_run"
                        if dry
                        else ("done" if pod.get("evicted_at") else "pending"),
                        refusals=pod.get("refusals"),
                        terminated_s=pod.get("terminated_s"),
                    )
                )
    elif func == "cordon_node":
        out["disruptions"] = [
            disruption("cordon", at=start, at_source="client", node=output.get("node"), status=done)
        ]
    if func in _LEGACY_RECOVERIES:
        primary, secondary = _LEGACY_RECOVERIES[func]
    elif isinstance(output.get("recovery_s"), int | float):
        primary, secondary = "recovery_s", ()
    else:
        return out
    detail = output.get("head") if func == "ray_head_recovery" else output
    detail = detail if isinstance(detail, dict) else {}
    out["recoveries"] = [
        recovery(metric, output.get(metric), detail, primary=metric == primary)
        for metric in (primary, *secondary)
        if metric in output
    ]
    return out
