"""Kubernetes probes: counts, readiness, spread, PodDisruptionBudgets,
StatefulSets, and the event-driven wait for Ready pods."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaosray.contract import RECOVERIES_KEY, RecoveryTimeout, recovery
from chaosray.k8s.client import REQUEST_TIMEOUT, apps_v1, core_v1, policy_v1
from chaosray.k8s.placement import (
    anti_affinity_conflict,
    choose_drain_node,
    pods_by_node,
    spread_conflict,
    why_pod_does_not_fit,
)
from chaosray.k8s.pods import (
    PodSet,
    api_message,
    condition,
    describe,
    ensure_namespace,
    equality_labels,
    explain,
    is_ready,
    is_running,
    is_terminating,
    last_disruption,
    list_pods,
    observe_ready,
    read,
    ready_since,
    require_pods,
    watch_pods,
)
from chaosray.k8s.safety import CORDON_LABEL
from chaosray.metrics import to_epoch

__all__ = [
    "cordoned_nodes",
    "count_ready_pods",
    "min_ready_pods_during",
    "node_running_pod",
    "pdb_blocks_disruption",
    "pdb_budget_is",
    "pdb_status",
    "pod_counts",
    "pods_on_distinct_nodes",
    "spare_node_for_drain",
    "statefulset_ready",
    "wait_for_ready_pods",
]

logger = logging.getLogger("chaostoolkit")

ZONE_LABEL = "topology.kubernetes.io/zone"
# The label chaosray puts on the nodes it cordons (see chaosray.k8s.actions).


def pod_counts(
    label_selector: str,
    namespace: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Count the pods of `label_selector` in `namespace` with one API call.

    Returns `total`, `running` (phase Running, not terminating), `ready`
    (Ready condition True and not terminating: a Terminating pod is never
    counted as running or ready), `terminating`, `pending`, and `pods` (name,
    node, phase, ready, terminating, created, ready_since of each).
    A selector that matches nothing gives zeros; an unknown namespace fails.
    """
    core = core_v1(secrets)
    pods = list_pods(core, namespace, label_selector).items
    if not pods:
        ensure_namespace(core, namespace)
    return {
        "total": len(pods),
        "running": sum(1 for p in pods if is_running(p)),
        "ready": sum(1 for p in pods if is_ready(p)),
        "terminating": sum(1 for p in pods if is_terminating(p)),
        "pending": sum(1 for p in pods if p.status and p.status.phase == "Pending"),
        "pods": [describe(p) for p in pods],
    }


def count_ready_pods(
    label_selector: str,
    namespace: str = "default",
    at_least: int | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> int:
    """The number of Ready pods of `label_selector` in `namespace` (Ready
    condition True and not terminating), with one API call. Use it with a
    tolerance such as `3` or `{"type": "range", "range": [2, 3]}`; in a
    method (where tolerances do not apply) `at_least` makes the probe fail
    when fewer pods are Ready."""
    ready = int(pod_counts(label_selector, namespace, configuration, secrets)["ready"])
    if at_least is not None and ready < at_least:
        raise ActivityFailed(
            f"only {ready} pods matching {label_selector!r} in {namespace!r} are Ready, "
            f"expected at least {at_least}"
        )
    return ready


def pods_on_distinct_nodes(
    label_selector: str,
    namespace: str = "default",
    distinct_zones: bool = False,
    zone_label: str = ZONE_LABEL,
    require: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Whether the (non-terminating) pods of `label_selector` sit on distinct
    nodes, and with `distinct_zones` also in distinct zones (node label
    `zone_label`).

    Returns `distinct` (true only if every pod is scheduled and no two share a
    node, or a zone when asked), `nodes` (pod -> node), `zones` (pod -> zone,
    when asked), `shared` (node or zone -> pods, where more than one), and
    `unscheduled` (pods without a node). Fails when no pod matches, and with
    `require` (for use in a method) when they are not distinct.
    """
    core = core_v1(secrets)
    pods, _ = require_pods(core, namespace, label_selector)
    pods = [p for p in pods if not is_terminating(p)]
    nodes = {p.metadata.name: p.spec.node_name for p in pods}
    unscheduled = sorted(name for name, node in nodes.items() if not node)
    placement: dict[str, str | None] = dict(nodes)
    result: dict[str, Any] = {"nodes": nodes, "unscheduled": unscheduled}
    if distinct_zones:
        node_list = read(
            lambda: core.list_node(_request_timeout=REQUEST_TIMEOUT), "list nodes"
        ).items
        zone_of = {n.metadata.name: (n.metadata.labels or {}).get(zone_label) for n in node_list}
        zones = {pod: zone_of.get(node) if node else None for pod, node in nodes.items()}
        result["zones"] = zones
        placement = zones
    groups: dict[str, list[str]] = {}
    for pod, where in placement.items():
        if where:
            groups.setdefault(where, []).append(pod)
    result["shared"] = {k: sorted(v) for k, v in groups.items() if len(v) > 1}
    result["distinct"] = not unscheduled and not result["shared"]
    if require and not result["distinct"]:
        raise ActivityFailed(
            f"pods of {label_selector!r} are not on distinct nodes/zones: shared "
            f"{result['shared']}, unscheduled {unscheduled}"
        )
    return result


def _find_pdb(
    secrets: Secrets, namespace: str, name: str | None, label_selector: str | None
) -> Any:
    policy = policy_v1(secrets)
    if name:
        try:
            return policy.read_namespaced_pod_disruption_budget(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                raise ActivityFailed(
                    f"PodDisruptionBudget {name!r} does not exist in namespace {namespace!r}"
                ) from None
            raise explain(exc, f"read PodDisruptionBudget {name}") from None
    if not label_selector:
        raise ActivityFailed("name the PodDisruptionBudget, or give the label_selector of its pods")
    wanted = equality_labels(label_selector)
    if wanted is None:
        raise ActivityFailed(
            f"label_selector {label_selector!r}: to find a PodDisruptionBudget by selector use "
            "key=value pairs, for example app=redis,tier=cache"
        )
    pdbs = read(
        lambda: policy.list_namespaced_pod_disruption_budget(
            namespace, _request_timeout=REQUEST_TIMEOUT
        ),
        f"list PodDisruptionBudgets in {namespace}",
    ).items
    for pdb in pdbs:
        match = (pdb.spec.selector.match_labels or {}) if pdb.spec.selector else {}
        if match and all(wanted.get(k) == v for k, v in match.items()):
            return pdb
    if not pdbs:
        ensure_namespace(core_v1(secrets), namespace)
    raise ActivityFailed(
        f"no PodDisruptionBudget in namespace {namespace!r} covers pods labelled {label_selector!r}"
        f" (found: {', '.join(p.metadata.name for p in pdbs) or 'none'})"
    )


def pdb_status(
    namespace: str = "default",
    name: str | None = None,
    label_selector: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """The PodDisruptionBudget `name`, or the one whose selector covers pods
    labelled `label_selector` (key=value pairs). Fails clearly when none exists.

    Returns `name`, `min_available` and `max_unavailable` (as set: a number,
    a percentage string, or null), `disruptions_allowed`, `current_healthy`,
    `desired_healthy` and `expected_pods` from its status.
    """
    pdb = _find_pdb(secrets, namespace, name, label_selector)
    status = pdb.status
    return {
        "name": pdb.metadata.name,
        "min_available": pdb.spec.min_available,
        "max_unavailable": pdb.spec.max_unavailable,
        "disruptions_allowed": status.disruptions_allowed if status else None,
        "current_healthy": status.current_healthy if status else None,
        "desired_healthy": status.desired_healthy if status else None,
        "expected_pods": status.expected_pods if status else None,
    }


def pdb_budget_is(
    namespace: str = "default",
    name: str | None = None,
    label_selector: str | None = None,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> bool:
    """True when the PodDisruptionBudget (by `name`, or covering pods labelled
    `label_selector`) exists and its minAvailable / maxUnavailable equal the
    given values (only those given are compared). Fails when it is missing."""
    if min_available is None and max_unavailable is None:
        raise ActivityFailed("give min_available or max_unavailable to compare the budget with")
    status = pdb_status(namespace, name, label_selector, configuration, secrets)
    ok = True
    for key, expected in (("min_available", min_available), ("max_unavailable", max_unavailable)):
        if expected is not None and str(status[key]) != str(expected):
            logger.info(f"PDB {status['name']}: {key} is {status[key]}, expected {expected}")
            ok = False
    return ok


def statefulset_ready(
    name: str,
    namespace: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Whether StatefulSet `name` has all its replicas Ready.

    Returns `ready` (readyReplicas == spec.replicas and the controller has
    seen the latest spec), `replicas`, `ready_replicas`, `current_replicas`,
    `updated_replicas`. Fails when the StatefulSet does not exist.
    """
    apps = apps_v1(secrets)
    try:
        sts = apps.read_namespaced_stateful_set(name, namespace, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            ensure_namespace(core_v1(secrets), namespace)
            raise ActivityFailed(
                f"StatefulSet {name!r} does not exist in namespace {namespace!r}"
            ) from None
        raise explain(exc, f"read StatefulSet {name}") from None
    status = sts.status
    desired = sts.spec.replicas or 0
    ready = status.ready_replicas or 0
    return {
        "name": name,
        "ready": ready == desired
        and (status.observed_generation or 0) >= (sts.metadata.generation or 0),
        "replicas": desired,
        "ready_replicas": ready,
        "current_replicas": status.current_replicas or 0,
        "updated_replicas": status.updated_replicas or 0,
    }


def _parse_since(since: str | float | None) -> datetime | None:
    if since in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(to_epoch(since), UTC)
    except (TypeError, ValueError):
        raise ActivityFailed(
            f"since {since!r} is not a time: give epoch seconds or RFC 3339 (2024-05-01T10:00:00Z)"
        ) from None


def wait_for_ready_pods(
    label_selector: str,
    count: int,
    namespace: str = "default",
    timeout: float = 300.0,
    since: str | float | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Wait until at least `count` pods of `label_selector` are Ready, watching
    the API (no sleep-polling), at most `timeout` seconds **after the
    disruption**: from `since` (epoch seconds or RFC 3339), else from the
    deletion/eviction time of the last pod a chaosray action disrupted in this
    namespace, else (no disruption known) from the start of the wait. A wait
    that starts 200 s after the deletion with a 300 s timeout waits 100 s.

    Recovery is measured from Kubernetes' own timestamps: from that instant
    to the Ready condition's lastTransitionTime of the last pod that became
    Ready after it (API timestamps have 1 s resolution). It fails when that is
    more than `timeout`, even if the pods are Ready by the time the wait
    looks. `recovery_s` is None when no pod became Ready after the
    disruption (no replacement was seen). `observed_recovery_s` is the same
    span as seen by this watch, to sub-second resolution (an upper bound when
    the pods were already Ready as the wait began).

    Returns `ready`, `count`, `timeout_s`, `waited_s`, `recovery_s`,
    `observed_recovery_s`, `since`, `since_source`, `recovered_at`, `pods`.
    On timeout it fails, naming the pods that were not Ready and why.
    """
    if not isinstance(count, int) or count < 0:
        raise ActivityFailed(f"count must be a whole number >= 0, got {count!r}")
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ActivityFailed(f"timeout must be a positive number of seconds, got {timeout!r}")
    start_mono = time.monotonic()
    start_wall = datetime.now(UTC)
    origin = _parse_since(since)
    source = "time given as since"
    if origin is None:
        disruption = last_disruption(namespace, label_selector)
        if disruption is not None:
            origin, source = disruption.at, f"{disruption.kind} of pod {disruption.pod}"
        else:
            origin, source = start_wall, "start of the wait"
    core = core_v1(secrets)
    listing = list_pods(core, namespace, label_selector)
    if not listing.items:
        ensure_namespace(core, namespace)
    state = PodSet(listing.items)
    # The bound counts from the disruption, not from the start of this wait.
    already_s = max(0.0, start_wall.timestamp() - origin.timestamp())
    deadline = start_mono + max(0.0, timeout - already_s)
    # Already true when the wait begins: the watch saw it no later than now.
    observed_at: float | None = start_mono if len(state.ready()) >= count else None
    if observed_at is None:
        version = str(listing.metadata.resource_version)
        for kind, obj in watch_pods(core, namespace, label_selector, version, deadline):
            state.apply(kind, obj)
            if len(state.ready()) >= count:
                observed_at = time.monotonic()
                break
    pods = state.pods
    ready = state.ready()
    waited = time.monotonic() - start_mono
    if len(ready) < count:
        not_ready = [p for p in pods.values() if not is_ready(p)]
        details = (
            ", ".join(f"{p.metadata.name} ({_why_not_ready(p)})" for p in not_ready) or "none exist"
        )
        raise RecoveryTimeout(
            f"only {len(ready)} of {count} pods matching {label_selector!r} in {namespace!r} "
            f"were Ready {timeout:g}s after the {source}; not Ready: {details}"
        )
    since_epoch = origin.timestamp()
    became_ready = [
        t for t in (ready_since(p) for p in ready) if t and t.timestamp() >= since_epoch - 1
    ]
    recovered = max(became_ready) if became_ready else None
    recovery_s = max(0.0, recovered.timestamp() - since_epoch) if recovered else None
    if recovered is not None and recovery_s is not None and recovery_s > timeout:
        raise RecoveryTimeout(
            f"{count} pods matching {label_selector!r} in {namespace!r} are Ready, but the last "
            f"became Ready {recovery_s:.0f}s after the {source} ({recovered.isoformat()}), "
            f"more than the {timeout:g}s allowed"
        )
    observed_s = (
        (start_wall.timestamp() + (observed_at - start_mono)) - since_epoch
        if observed_at is not None
        else None
    )
    when = {
        "since": origin.isoformat(),
        "since_source": source,
        "recovered_at": recovered.isoformat() if recovered else None,
    }
    return {
        "ready": len(ready),
        "count": count,
        "timeout_s": timeout,
        "waited_s": waited,
        "recovery_s": recovery_s,
        "observed_recovery_s": observed_s,
        **when,
        "pods": [describe(p) for p in pods.values()],
        RECOVERIES_KEY: [
            recovery("recovery_s", recovery_s, when, bound_s=timeout),
            recovery("observed_recovery_s", observed_s, when, primary=False),
        ],
    }


def min_ready_pods_during(
    label_selector: str,
    at_least: int,
    duration: float,
    namespace: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Watch the pods of `label_selector` for `duration` seconds (API watch
    events, every change seen, not samples) and fail if fewer than
    `at_least` were Ready at any moment, naming when and which pods were
    not Ready. Run it in the background right after a disruption, for the
    observation, so "at least N stay Ready" is checked throughout and not
    only before and after.

    Returns `fewest_ready`, `fewest_at` (RFC 3339), `not_ready_then`,
    `ready_at_end`, `at_least`, `watched_s`.
    """
    if isinstance(at_least, bool) or not isinstance(at_least, int) or at_least < 0:
        raise ActivityFailed(f"at_least must be a whole number >= 0, got {at_least!r}")
    if isinstance(duration, bool) or not isinstance(duration, int | float) or duration <= 0:
        raise ActivityFailed(f"duration must be a positive number of seconds, got {duration!r}")
    core = core_v1(secrets)
    ensure_namespace(core, namespace)
    seen = observe_ready(core, namespace, label_selector, float(duration))
    fewest_at = datetime.fromtimestamp(seen.fewest_at, UTC).isoformat()
    result = {
        "fewest_ready": seen.fewest,
        "fewest_at": fewest_at,
        "not_ready_then": seen.not_ready_then,
        "ready_at_end": seen.ready_at_end,
        "at_least": at_least,
        "watched_s": round(seen.watched_s, 3),
    }
    if seen.fewest < at_least:
        raise ActivityFailed(
            f"only {seen.fewest} pods matching {label_selector!r} in {namespace!r} were Ready "
            f"at {fewest_at} (at least {at_least} must stay Ready); not Ready then: "
            f"{', '.join(seen.not_ready_then) or 'none listed'}"
        )
    logger.info(
        f"{label_selector}: at least {seen.fewest} Ready throughout {seen.watched_s:.0f}s "
        f"(required {at_least})"
    )
    return result


def _why_not_ready(pod: Any) -> str:
    if is_terminating(pod):
        return "terminating"
    phase = pod.status.phase if pod.status else "unknown"
    scheduled = condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.status == "False":
        return f"{phase}, not scheduled: {scheduled.reason}: {scheduled.message}"
    ready = condition(pod, "Ready")
    if ready is not None and ready.reason:
        return f"{phase}, {ready.reason}"
    return str(phase)


def pdb_blocks_disruption(
    label_selector: str,
    namespace: str = "default",
    pod_name: str | None = None,
    expect_refused: bool | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ask the API server whether evicting one more pod of `label_selector`
    (`pod_name`, else its first Ready pod) would be allowed now, with a
    server-side **dry-run** eviction: the PodDisruptionBudget is evaluated
    exactly as for a real eviction, and nothing is evicted.

    Returns `refused` (true when the PDB refuses: HTTP 429), `status`,
    `message`, `pod`. Run it while a pod is already gone to show that a
    PDB prevents a second simultaneous disruption; with `expect_refused`
    the probe fails when the answer differs.
    """
    result = _dry_run_eviction(label_selector, namespace, pod_name, secrets)
    if expect_refused is not None and result["refused"] != expect_refused:
        verb = "allowed" if expect_refused else "refused"
        raise ActivityFailed(
            f"the PodDisruptionBudget {verb} a further disruption of {result['pod']}: "
            f"{result['message']}"
        )
    return result


def _dry_run_eviction(
    label_selector: str, namespace: str, pod_name: str | None, secrets: Secrets
) -> dict[str, Any]:
    core = core_v1(secrets)
    pods, _ = require_pods(core, namespace, label_selector)
    if pod_name:
        target = next((p for p in pods if p.metadata.name == pod_name), None)
        if target is None:
            raise ActivityFailed(
                f"pod {pod_name!r} does not match {label_selector!r} in {namespace!r}"
            )
    else:
        target = next((p for p in pods if is_ready(p)), None)
        if target is None:
            raise ActivityFailed(f"no Ready pod matching {label_selector!r} to test an eviction on")
    body = client.V1Eviction(
        metadata=client.V1ObjectMeta(name=target.metadata.name, namespace=namespace)
    )
    try:
        core.create_namespaced_pod_eviction(
            target.metadata.name, namespace, body, dry_run="All", _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 429:
            return {
                "refused": True,
                "status": 429,
                "message": api_message(exc),
                "pod": target.metadata.name,
            }
        raise explain(exc, f"dry-run eviction of {target.metadata.name}") from None
    return {
        "refused": False,
        "status": 201,
        "message": "the eviction would be allowed",
        "pod": target.metadata.name,
    }


def node_running_pod(
    label_selector: str,
    namespace: str = "default",
    pick: str = "oldest",
    seed: int | None = None,
    avoid_label_selector: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> str:
    """The name of a node that runs a Ready pod of `label_selector` (the node
    of the `oldest` pod, or a `random` one, reproducible with `seed`) and no
    pod of `avoid_label_selector` (the Ray head, say): the node to drain in a
    node-drain scenario."""
    core = core_v1(secrets)
    return choose_drain_node(core, namespace, label_selector, avoid_label_selector, pick, seed).node


def spare_node_for_drain(
    label_selector: str,
    namespace: str = "default",
    avoid_label_selector: str | None = None,
    pick: str = "oldest",
    seed: int | None = None,
    require: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Whether the pod a node drain would evict has another node to go to.

    Chooses the node as `drain_node` does (a Ready pod of `label_selector`,
    on a node without a pod of `avoid_label_selector`), then checks every
    other node as the scheduler would: Ready, not cordoned, taints
    tolerated, nodeSelector and required node affinity matched, enough
    allocatable CPU and memory left for the pod's requests, the pod's
    required pod anti-affinity (no pod it must avoid in the node's topology
    domain), and its DoNotSchedule topology spread constraints (the drained
    node stays an empty domain, as the scheduler counts it; host ports and
    pod affinity are not checked). Returns `node_to_drain`,
    `pod`, `fits` (node names), `does_not_fit` ({node: reason}) and `ok`.
    With `require` the probe fails when no node fits."""
    core = core_v1(secrets)
    target = choose_drain_node(core, namespace, label_selector, avoid_label_selector, pick, seed)
    nodes = read(lambda: core.list_node(_request_timeout=REQUEST_TIMEOUT), "list nodes").items
    placed = pods_by_node(core)
    fits: list[str] = []
    does_not_fit: dict[str, str] = {}
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        name = node.metadata.name
        if name == target.node:
            continue
        reason = (
            why_pod_does_not_fit(target.pod, node, placed.get(name, []))
            or anti_affinity_conflict(target.pod, node, nodes, placed, target.node)
            or spread_conflict(target.pod, node, nodes, placed, target.node)
        )
        if reason is None:
            fits.append(name)
        else:
            does_not_fit[name] = reason
    result = {
        "node_to_drain": target.node,
        "pod": target.pod.metadata.name,
        "fits": fits,
        "does_not_fit": does_not_fit,
        "ok": bool(fits),
    }
    if require and not fits:
        reasons = "; ".join(f"{n}: {r}" for n, r in does_not_fit.items()) or "no other node"
        raise ActivityFailed(
            f"draining {target.node} would leave {target.pod.metadata.name} nowhere to go "
            f"({reasons})"
        )
    return result


def cordoned_nodes(
    fail_if_ours: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Nodes marked unschedulable: `cordoned` (all of them), `ours` (those
    chaosray cordoned, which `uncordon_all` restores) and `ours_count`.
    With `fail_if_ours` the probe fails while chaosray left a node cordoned."""
    core = core_v1(secrets)
    items = read(lambda: core.list_node(_request_timeout=REQUEST_TIMEOUT), "list nodes").items
    cordoned = sorted(n.metadata.name for n in items if n.spec.unschedulable)
    ours = sorted(
        n.metadata.name for n in items if (n.metadata.labels or {}).get(CORDON_LABEL) == "true"
    )
    if fail_if_ours and ours:
        raise ActivityFailed(f"nodes left cordoned by chaosray: {', '.join(ours)}")
    return {"cordoned": cordoned, "ours": ours, "ours_count": len(ours)}
