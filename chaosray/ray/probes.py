"""KubeRay-aware probes: RayCluster and RayService status, Ray's node table,
Serve applications and proxies, GCS health, worker reconnection and zombies.

Every probe names the cluster by `cluster` (a RayCluster) or `service` (a
RayService, whose active cluster is followed). Dashboard probes go through the
API server's service proxy to `<cluster>-head-svc` by default (only a
kubeconfig is needed), or to `dashboard_url` when given.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeVar

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosray.contract import RECOVERIES_KEY, RecoveryTimeout, recovery
from chaosray.k8s.client import core_v1
from chaosray.k8s.pods import is_ready, last_disruption, list_pods
from chaosray.k8s.probes import wait_for_ready_pods
from chaosray.metrics import to_epoch
from chaosray.ray.dashboard import (
    NODE_TYPE_LABEL,
    Dashboard,
    DashboardUnreachable,
    deleted_head_node,
    nodes,
    ray_selector,
    read_ray_object,
    resolve_cluster_name,
    serve_applications,
)
from chaosray.wait import WaitTimeout, wait_until

__all__ = [
    "ray_alive_nodes",
    "ray_gcs_healthy",
    "ray_head_recovery",
    "ray_operational",
    "ray_operational_throughout",
    "ray_serve_applications",
    "ray_serve_proxies",
    "ray_zombie_workers",
    "raycluster_status",
    "rayservice_status",
]

logger = logging.getLogger("chaostoolkit")


@dataclass(frozen=True)
class RayTarget:
    """The Ray cluster a probe's arguments name, and how to reach its dashboard."""

    cluster: str | None = None
    service: str | None = None
    namespace: str = "default"
    dashboard_url: str | None = None
    head_service: str | None = None

    def cluster_name(self, secrets: Secrets) -> str:
        return self.cluster or resolve_cluster_name(
            self.namespace, self.cluster, self.service, secrets
        )

    def dashboard(self, secrets: Secrets) -> Dashboard:
        if self.dashboard_url:
            name = self.cluster or self.service or "ray"
            return Dashboard.for_cluster(self.namespace, name, self.dashboard_url, None)
        name = resolve_cluster_name(self.namespace, self.cluster, self.service, secrets)
        return Dashboard.for_cluster(self.namespace, name, None, self.head_service)

    def arguments(self) -> dict[str, Any]:
        """As keyword arguments of a probe."""
        return asdict(self)


R = TypeVar("R")


def _dashboard_probe(read: Callable[[RayTarget, Secrets], R]) -> Callable[..., R]:
    """A probe with the Ray probes' one signature (what `chaos discover`
    shows): the cluster and how to reach its dashboard, then ``read``."""

    def probe(
        cluster: str | None = None,
        service: str | None = None,
        namespace: str = "default",
        dashboard_url: str | None = None,
        head_service: str | None = None,
        configuration: Configuration = None,
        secrets: Secrets = None,
    ) -> R:
        target = RayTarget(cluster, service, namespace, dashboard_url, head_service)
        return read(target, secrets)

    signature = inspect.signature(probe)
    probe.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation=inspect.signature(read).return_annotation
    )
    probe.__name__ = probe.__qualname__ = read.__name__
    probe.__doc__, probe.__module__ = read.__doc__, read.__module__
    return probe


def raycluster_status(
    cluster: str | None = None,
    service: str | None = None,
    namespace: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Status of the RayCluster `cluster` (or RayService `service`'s active one).

    Returns `name`, `state`, `desired_workers`, `ready_workers`,
    `available_workers`, `head_pod` (name), `head_ready` (the HeadPodReady
    condition, else the head pod's readiness), `replica_failure` (the
    ReplicaFailure condition's message, or null), `ready` (head ready and
    ready workers == desired), `conditions`.
    """
    name = resolve_cluster_name(namespace, cluster, service, secrets)
    obj = read_ray_object("rayclusters", name, namespace, secrets)
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    head_pods = [
        p
        for p in list_pods(core_v1(secrets), namespace, ray_selector(name, "head")).items
        if p.metadata.deletion_timestamp is None
    ]
    head_condition = conditions.get("HeadPodReady")
    head_ready = (
        head_condition.get("status") == "True"
        if head_condition
        else any(is_ready(p) for p in head_pods)
    )
    failure = conditions.get("ReplicaFailure")
    desired = int(status.get("desiredWorkerReplicas") or 0)
    ready_workers = int(status.get("readyWorkerReplicas") or 0)
    return {
        "name": name,
        "state": status.get("state"),
        "desired_workers": desired,
        "ready_workers": ready_workers,
        "available_workers": int(status.get("availableWorkerReplicas") or 0),
        "head_pod": head_pods[0].metadata.name if head_pods else None,
        "head_ready": head_ready,
        "replica_failure": failure.get("message")
        if failure and failure.get("status") == "True"
        else None,
        "ready": head_ready and ready_workers == desired,
        "conditions": list(conditions.values()),
    }


def rayservice_status(
    service: str,
    namespace: str = "default",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Status of RayService `service`: `ready` (its Ready condition),
    `active_cluster`, `pending_cluster`, and `applications` (name -> status,
    message and deployments: name -> status)."""
    obj = read_ray_object("rayservices", service, namespace, secrets)
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    active = status.get("activeServiceStatus") or {}
    pending = status.get("pendingServiceStatus") or {}
    applications = {
        app: {
            "status": info.get("status"),
            "message": info.get("message"),
            "deployments": {
                d: (dep or {}).get("status")
                for d, dep in (info.get("serveDeploymentStatuses") or {}).items()
            },
        }
        for app, info in (active.get("applicationStatuses") or {}).items()
    }
    return {
        "name": service,
        "ready": (conditions.get("Ready") or {}).get("status") == "True",
        "active_cluster": active.get("rayClusterName"),
        "pending_cluster": pending.get("rayClusterName"),
        "applications": applications,
        "conditions": list(conditions.values()),
    }


@_dashboard_probe
def ray_alive_nodes(target: RayTarget, secrets: Secrets) -> dict[str, Any]:
    """Ray's own node table, from the dashboard: `alive` (count of ALIVE
    nodes), `alive_workers`, `dead` (count), `head_alive`, and `nodes` (each:
    `node_id`, `node_ip`, `state`, `is_head`). After a head restart the new
    head has a new node id and the old one stays DEAD."""
    dashboard = target.dashboard(secrets)
    table = nodes(dashboard, secrets)
    alive = [n for n in table if n.get("state") == "ALIVE"]
    return {
        "alive": len(alive),
        "alive_workers": sum(1 for n in alive if not n.get("is_head_node")),
        "dead": sum(1 for n in table if n.get("state") == "DEAD"),
        "head_alive": any(n.get("is_head_node") for n in alive),
        "nodes": [
            {
                "node_id": n.get("node_id"),
                "node_ip": n.get("node_ip"),
                "state": n.get("state"),
                "is_head": bool(n.get("is_head_node")),
            }
            for n in table
        ],
    }


@_dashboard_probe
def ray_serve_applications(target: RayTarget, secrets: Secrets) -> dict[str, Any]:
    """Serve applications from the dashboard: `all_running` (every application
    RUNNING), `applications` (name -> `status`, `message`, `deployments`: name ->
    status and replica count), `replicas_per_node` (node id -> replicas)."""
    dashboard = target.dashboard(secrets)
    body = serve_applications(dashboard, secrets)
    apps: dict[str, Any] = {}
    per_node: Counter[str] = Counter()
    for name, app in (body.get("applications") or {}).items():
        deployments = {}
        for dep_name, dep in (app.get("deployments") or {}).items():
            replicas = dep.get("replicas") or []
            for replica in replicas:
                if replica.get("state") == "RUNNING":
                    per_node[str(replica.get("node_id"))] += 1
            deployments[dep_name] = {"status": dep.get("status"), "replicas": len(replicas)}
        apps[name] = {
            "status": app.get("status"),
            "message": app.get("message"),
            "deployments": deployments,
        }
    return {
        "all_running": bool(apps) and all(a["status"] == "RUNNING" for a in apps.values()),
        "applications": apps,
        "replicas_per_node": dict(per_node),
    }


@_dashboard_probe
def ray_serve_proxies(target: RayTarget, secrets: Secrets) -> dict[str, Any]:
    """Serve's HTTP proxies (one per node that serves): `healthy` (count of
    HEALTHY proxies), `total`, `all_healthy`, `proxies` (node id -> status)."""
    dashboard = target.dashboard(secrets)
    body = serve_applications(dashboard, secrets)
    proxies = {
        str(node): str((p or {}).get("status")) for node, p in (body.get("proxies") or {}).items()
    }
    healthy = sum(1 for s in proxies.values() if s == "HEALTHY")
    return {
        "healthy": healthy,
        "total": len(proxies),
        "all_healthy": bool(proxies) and healthy == len(proxies),
        "proxies": proxies,
    }


@_dashboard_probe
def ray_gcs_healthy(target: RayTarget, secrets: Secrets) -> bool:
    """Whether the GCS answers, as the dashboard sees it (`/api/gcs_healthz`).
    False (not an error) while the head is down."""
    dashboard = target.dashboard(secrets)
    try:
        dashboard.get("api/gcs_healthz", None, secrets)
    except DashboardUnreachable as exc:
        logger.info(f"GCS not healthy: {exc}")
        return False
    return True


def ray_operational(
    expected_alive: int,
    require: bool = False,
    cluster: str | None = None,
    service: str | None = None,
    namespace: str = "default",
    dashboard_url: str | None = None,
    head_service: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ray stays operational (for example while a Redis pod is gone): every
    Serve application RUNNING and at least `expected_alive` ALIVE nodes.
    Returns `operational`, `alive`, `all_running`, `reason` (when not); with
    `require` (for use in a method) the probe fails when Ray is not."""
    target = RayTarget(cluster, service, namespace, dashboard_url, head_service)
    result = _operational(expected_alive, target, secrets)
    if require and not result["operational"]:
        raise ActivityFailed(f"Ray is not operational: {result['reason']}")
    return result


def ray_operational_throughout(
    expected_alive: int,
    duration: float = 60.0,
    interval: float = 1.0,
    tolerate_outage_s: float = 0.0,
    recovery_timeout: float = 300.0,
    require: bool = False,
    cluster: str | None = None,
    service: str | None = None,
    namespace: str = "default",
    dashboard_url: str | None = None,
    head_service: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Ray's operation over a window, not at one instant: `ray_operational`
    sampled every `interval` seconds for `duration` seconds (each sample
    bounded by the dashboard's own timeouts), and on past the window, up to
    `recovery_timeout` seconds more, while the last sample is still bad.

    Returns `samples`, `bad_samples`, `first_bad` / `last_bad` (epoch, the
    first and the last bad instant), `recovered_at` (the first good sample
    after the last bad one), `outage_s` (first bad to recovered, or to the end
    while still bad), `still_bad`, `reasons` (the distinct reasons, first
    seen first) and `ok`. `ok` holds when Ray was never bad, or, with
    `tolerate_outage_s` (a Redis primary's loss restarts the GCS: give how
    long that may take), when it recovered within that many seconds. With
    `require` the probe fails when not `ok`."""
    if not isinstance(duration, int | float) or duration < 0:
        raise ActivityFailed(f"duration must be a number of seconds >= 0, got {duration!r}")
    if not isinstance(interval, int | float) or interval <= 0:
        raise ActivityFailed(f"interval must be a positive number of seconds, got {interval!r}")
    target = RayTarget(cluster, service, namespace, dashboard_url, head_service)
    started = time.time()
    end, hard_end = started + duration, started + duration + max(0.0, recovery_timeout)
    samples = bad = 0
    first_bad: float | None = None
    last_bad: float | None = None
    recovered_at: float | None = None
    reasons: list[str] = []
    while True:
        at = time.time()
        state = _operational(expected_alive, target, secrets)
        samples += 1
        if state["operational"]:
            if last_bad is not None and recovered_at is None:
                recovered_at = at
                logger.info(f"Ray operational again after {at - (first_bad or at):.1f}s")
        else:
            bad += 1
            first_bad = at if first_bad is None else first_bad
            last_bad, recovered_at = at, None
            reason = str(state["reason"])
            if reason not in reasons and len(reasons) < 10:
                reasons.append(reason)
        now = time.time()
        still_bad = not state["operational"]
        if now >= hard_end or (now >= end and not still_bad):
            break
        time.sleep(max(0.0, min(interval - (now - at), hard_end - now)))
    outage = None
    if first_bad is not None:
        outage = (recovered_at if recovered_at is not None else time.time()) - first_bad
    ok = bad == 0 or (
        recovered_at is not None and outage is not None and outage <= tolerate_outage_s
    )
    result = {
        "ok": ok,
        "samples": samples,
        "bad_samples": bad,
        "first_bad": first_bad,
        "last_bad": last_bad,
        "recovered_at": recovered_at,
        "outage_s": outage,
        "still_bad": still_bad,
        "tolerate_outage_s": tolerate_outage_s,
        "reasons": reasons,
        "window_s": time.time() - started,
    }
    if require and not ok:
        what = (
            f"still not operational after {result['window_s']:.0f}s"
            if still_bad
            else f"not operational for {outage:.1f}s (tolerated: {tolerate_outage_s:g}s)"
        )
        raise ActivityFailed(
            f"Ray was {what}; {bad} of {samples} samples bad; first reason: {reasons[0]}"
        )
    return result


def _operational(expected_alive: int, target: RayTarget, secrets: Secrets) -> dict[str, Any]:
    try:
        node_table = ray_alive_nodes(**target.arguments(), secrets=secrets)
        serve = ray_serve_applications(**target.arguments(), secrets=secrets)
    except DashboardUnreachable as exc:
        return {"operational": False, "alive": None, "all_running": None, "reason": str(exc)}
    reasons = []
    if node_table["alive"] < expected_alive:
        reasons.append(f"{node_table['alive']} ALIVE nodes, expected {expected_alive}")
    if not serve["all_running"]:
        states = {k: v["status"] for k, v in serve["applications"].items()}
        reasons.append(f"Serve applications not all RUNNING: {states or 'none deployed'}")
    return {
        "operational": not reasons,
        "alive": node_table["alive"],
        "all_running": serve["all_running"],
        "reason": "; ".join(reasons) or None,
    }


@_dashboard_probe
def ray_zombie_workers(target: RayTarget, secrets: Secrets) -> dict[str, Any]:
    """Worker pods that Kubernetes calls Ready but that have no ALIVE node in
    Ray's node table (matched by pod IP): `zombies` (pod names), `count`,
    `workers` (pod -> its Ray node state or null)."""
    name = target.cluster_name(secrets)
    pods = list_pods(core_v1(secrets), target.namespace, ray_selector(name, "worker")).items
    dashboard = replace(target, cluster=name, service=None).dashboard(secrets)
    table = nodes(dashboard, secrets)
    state_by_ip: dict[str, str] = {}
    for node in table:  # an ALIVE entry wins over DEAD ones of the same IP
        ip = str(node.get("node_ip"))
        if state_by_ip.get(ip) != "ALIVE":
            state_by_ip[ip] = str(node.get("state"))
    workers = {p.metadata.name: state_by_ip.get(p.status.pod_ip or "") for p in pods if is_ready(p)}
    zombies = sorted(n for n, state in workers.items() if state != "ALIVE")
    return {"zombies": zombies, "count": len(zombies), "workers": workers}


def _reconnection(
    name: str,
    namespace: str,
    dashboard_url: str | None,
    head_service: str | None,
    secrets: Secrets,
    since: float | None = None,
) -> dict[str, Any] | None:
    """What the new head says about each worker pod (the Ready ones, and
    every one created before ``since``, the head's deletion, that is still
    there), from two signals
    that only the restarted cluster can give: its Serve controller runs on
    the new head pod, and a worker's Serve proxy is HEALTHY under that
    controller (it health-checked the proxy after the restart). A restarted
    GCS loads every node it knew as ALIVE from Redis before any raylet has
    reconnected (Ray's GcsNodeManager::Initialize), so ALIVE alone proves
    nothing. Also the state of the deleted head's node in the new table
    (reported, not required: the new GCS marks it DEAD only after its health
    checks have failed)."""
    core = core_v1(secrets)
    pods = list_pods(core, namespace, ray_selector(name)).items
    ready = [p for p in pods if is_ready(p)]

    def typed(node_type: str, among: list[Any]) -> list[Any]:
        return [p for p in among if (p.metadata.labels or {}).get(NODE_TYPE_LABEL) == node_type]

    heads = typed("head", ready)
    workers = [p.metadata.name for p in typed("worker", ready)]
    # Every worker that was there when the head went must come back, Ready
    # or not now: one Ready worker is not "the workers reconnected".
    survivors = sorted(
        p.metadata.name
        for p in typed("worker", pods)
        if p.metadata.deletion_timestamp is None
        and (since is None or p.metadata.creation_timestamp.timestamp() < since)
    )
    if not heads:
        return None
    new_head = heads[0].metadata.name
    dashboard = RayTarget(name, None, namespace, dashboard_url, head_service).dashboard(secrets)
    try:
        body = serve_applications(dashboard, secrets)
        table = nodes(dashboard, secrets)
    except DashboardUnreachable:
        return None
    controller = body.get("controller_info") or {}
    controller_on_new_head = controller.get("node_instance_id") == new_head
    healthy_on = {
        str(p.get("node_instance_id"))
        for p in (body.get("proxies") or {}).values()
        if isinstance(p, dict) and p.get("status") == "HEALTHY"
    }
    old_head_node = deleted_head_node(namespace, name)
    old_head_state = next(
        (str(n.get("state")) for n in table if old_head_node and n.get("node_id") == old_head_node),
        None,
    )
    reconnected = sorted(w for w in workers if controller_on_new_head and w in healthy_on)
    return {
        "new_head": new_head,
        "controller_on_new_head": controller_on_new_head,
        "workers": sorted(workers),
        "workers_before": survivors,
        "reconnected": reconnected,
        "zombies": sorted((set(workers) | set(survivors)) - set(reconnected)),
        "old_head_node_id": old_head_node,
        "old_head_state": old_head_state,
    }


def ray_head_recovery(
    cluster: str | None = None,
    service: str | None = None,
    namespace: str = "default",
    head_timeout: float = 180.0,
    reconnect_timeout: float = 60.0,
    dashboard_url: str | None = None,
    head_service: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """After the head pod is deleted: wait (at most `head_timeout` s) for the
    new head pod to be Ready, then (at most `reconnect_timeout` s after that
    Ready) for every worker pod that was there when the head was deleted, and
    every Ready one, to show a sign of life only a reconnected worker gives:
    Serve's controller running on the new head and the worker's Serve proxy
    HEALTHY under it. (A restarted GCS lists every node it knew as ALIVE
    before any raylet reconnects, so the node table alone would be believed
    too early.)

    Returns `head_ready_s` (deletion to Ready, Kubernetes' timestamps),
    `workers_reconnect_s` (from the head Ready until the last worker's proxy
    was HEALTHY under the new controller, as observed), `reconnected`
    (worker pods), `workers_before` (the worker pods there at the deletion),
    `alive` (how many reconnected), `zombies` (worker pods with no such sign,
    by name), `old_head` (the deleted head pod),
    `old_head_node_id` (its Ray node, as `delete_ray_head` saw it) and
    `old_head_state` (that node in the new node table: DEAD once the new GCS
    has given up on it), `head` (the wait's details). Fails, naming the
    zombies, when either wait times out.
    """
    name = resolve_cluster_name(namespace, cluster, service, secrets)
    disruption = last_disruption(namespace, ray_selector(name, "head"))
    old_head = disruption.pod if disruption is not None else None
    head = wait_for_ready_pods(
        ray_selector(name, "head"), 1, namespace, head_timeout, None, configuration, secrets
    )
    head_ready_at = to_epoch(head["recovered_at"]) if head["recovered_at"] else time.time()
    deleted_at = disruption.at.timestamp() if disruption is not None else None
    last: dict[str, Any] = {}

    def reconnected() -> dict[str, Any] | None:
        found = _reconnection(name, namespace, dashboard_url, head_service, secrets, deleted_at)
        if found is not None:
            last.update(found)
        return found if found and found["workers"] and not found["zombies"] else None

    try:
        final = wait_until(
            reconnected,
            # The minute counts from the new head's Ready, not from this look.
            timeout=max(0.1, head_ready_at + reconnect_timeout - time.time()),
            interval=0.5,
            description="every worker's Serve proxy HEALTHY under the new head's controller",
        )
    except WaitTimeout:
        zombies = last.get("zombies") or ["(the new head's dashboard never answered)"]
        raise RecoveryTimeout(
            f"workers did not reconnect within {reconnect_timeout:g}s of the new head being "
            f"Ready; no HEALTHY Serve proxy under the new controller for: {', '.join(zombies)}"
            + (
                ""
                if last.get("controller_on_new_head", True)
                else " (Serve's controller is not on the new head yet)"
            )
        ) from None
    observed_at = time.time()
    reconnect_s = max(0.0, observed_at - head_ready_at)
    if reconnect_s > reconnect_timeout:
        raise RecoveryTimeout(
            f"workers reconnected {reconnect_s:.1f}s after the new head was Ready, more than "
            f"the {reconnect_timeout:g}s allowed"
        )
    return {
        RECOVERIES_KEY: [
            recovery("head_ready_s", head["recovery_s"], head, bound_s=head_timeout),
            recovery(
                "workers_reconnect_s",
                reconnect_s,
                {**head, "since": head["recovered_at"], "since_source": "the new head's Ready"},
                primary=False,
                bound_s=reconnect_timeout,
            ),
        ],
        "head_ready_s": head["recovery_s"],
        "workers_reconnect_s": reconnect_s,
        "reconnected": final["reconnected"],
        "workers_before": final["workers_before"],
        "alive": len(final["reconnected"]),
        "zombies": final["zombies"],
        "old_head": old_head,
        "old_head_node_id": final["old_head_node_id"],
        "old_head_state": final["old_head_state"],
        "head": head,
    }
