"""Which node a drain takes, and whether the pod it evicts has somewhere to go.

Helpers for ``drain_node`` and the pre-validation probe
``spare_node_for_drain``: both choose the node with :func:`choose_drain_node`,
so the check and the drain agree on the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaoslib.exceptions import ActivityFailed
from kubernetes import client
from kubernetes.utils import parse_quantity

from chaosray.k8s.client import REQUEST_TIMEOUT
from chaosray.k8s.pods import is_ready, is_terminating, list_pods, pick_pod, read, require_pods

__all__: list[str] = []  # helpers, not activities

RESOURCES = ("cpu", "memory")


@dataclass(frozen=True)
class DrainTarget:
    node: str
    pod: Any  # the pod of the selector whose node it is


def choose_drain_node(
    core: client.CoreV1Api,
    namespace: str,
    label_selector: str,
    avoid_label_selector: str | None = None,
    pick: str = "oldest",
    seed: int | None = None,
) -> DrainTarget:
    """The node of a Ready pod of ``label_selector`` (the ``oldest``, or a
    ``random`` one) among the nodes that run no pod of
    ``avoid_label_selector`` (the Ray head, say)."""
    pods, _ = require_pods(core, namespace, label_selector)
    ready = [p for p in pods if is_ready(p) and p.spec.node_name]
    if not ready:
        raise ActivityFailed(f"no Ready, scheduled pod matches {label_selector!r} in {namespace!r}")
    avoided: set[str] = set()
    if avoid_label_selector:
        avoided = {
            pod.spec.node_name
            for pod in list_pods(core, namespace, avoid_label_selector).items
            if pod.spec.node_name and not is_terminating(pod)
        }
    candidates = [p for p in ready if p.spec.node_name not in avoided]
    if not candidates:
        where = ", ".join(f"{p.metadata.name} on {p.spec.node_name}" for p in ready)
        raise ActivityFailed(
            f"every node that runs a Ready pod of {label_selector!r} also runs a pod of "
            f"{avoid_label_selector!r} ({where}): no node to drain without it"
        )
    chosen = pick_pod(candidates, pick, seed)
    return DrainTarget(str(chosen.spec.node_name), chosen)


def pods_by_node(core: client.CoreV1Api) -> dict[str, list[Any]]:
    """Every scheduled pod of the cluster, by node: one list call."""
    listing = read(
        lambda: core.list_pod_for_all_namespaces(_request_timeout=REQUEST_TIMEOUT),
        "list pods in all namespaces",
    )
    by_node: dict[str, list[Any]] = {}
    for pod in listing.items:
        if pod.spec.node_name:
            by_node.setdefault(pod.spec.node_name, []).append(pod)
    return by_node


def pods_on_node(core: client.CoreV1Api, node: str) -> list[Any]:
    listing = read(
        lambda: core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", _request_timeout=REQUEST_TIMEOUT
        ),
        f"list pods on node {node}",
    )
    return list(listing.items)


def pod_requests(pod: Any) -> dict[str, float]:
    """CPU (cores) and memory (bytes) the pod requests, as the scheduler
    counts them: the sum of its containers, or its largest init container if
    that is more."""

    def total(containers: list[Any]) -> dict[str, float]:
        out = dict.fromkeys(RESOURCES, 0.0)
        for container in containers or []:
            requests = (container.resources.requests if container.resources else None) or {}
            for name in RESOURCES:
                if name in requests:
                    out[name] += float(parse_quantity(requests[name]))
        return out

    main = total(pod.spec.containers)
    for init in pod.spec.init_containers or []:
        one = total([init])
        for name in RESOURCES:
            main[name] = max(main[name], one[name])
    return main


def _tolerates(pod: Any, taint: Any) -> bool:
    for toleration in pod.spec.tolerations or []:
        if toleration.effect not in (None, "", taint.effect):
            continue
        if toleration.operator == "Exists" and toleration.key in (None, "", taint.key):
            return True
        if toleration.key == taint.key and (toleration.value or "") == (taint.value or ""):
            return True
    return False


def why_pod_does_not_fit(pod: Any, node: Any, pods_there: list[Any]) -> str | None:
    """None when ``pod`` could be scheduled on ``node`` as far as readiness,
    cordon, taints, nodeSelector and requested CPU/memory go (not affinity or
    ports); else the first reason it could not."""
    ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
    if ready is None or ready.status != "True":
        return "not Ready"
    if node.spec.unschedulable:
        return "cordoned"
    for taint in node.spec.taints or []:
        if taint.effect in ("NoSchedule", "NoExecute") and not _tolerates(pod, taint):
            return f"taint {taint.key}={taint.value or ''}:{taint.effect} not tolerated"
    labels = node.metadata.labels or {}
    for key, value in (pod.spec.node_selector or {}).items():
        if labels.get(key) != value:
            return f"nodeSelector {key}={value} does not match"
    wanted = pod_requests(pod)
    allocatable = node.status.allocatable or {}
    for name in RESOURCES:
        if not wanted[name]:
            continue
        used = sum(
            pod_requests(p)[name]
            for p in pods_there
            if not is_terminating(p)
            and (p.status is None or p.status.phase not in ("Succeeded", "Failed"))
        )
        free = float(parse_quantity(allocatable.get(name, "0"))) - used
        if free < wanted[name]:
            return f"{name}: {free:g} free, {wanted[name]:g} requested"
    return None


def selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """Whether ``labels`` match a Kubernetes label selector (matchLabels and
    matchExpressions, as the scheduler reads them); an empty selector
    matches everything, a missing one nothing."""
    if selector is None:
        return False
    for key, value in (selector.match_labels or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.match_expressions or []:
        present, value = expression.key in labels, labels.get(expression.key)
        values = expression.values or []
        matched = {
            "In": present and value in values,
            "NotIn": not present or value not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(expression.operator, False)
        if not matched:
            return False
    return True


def anti_affinity_conflict(
    pod: Any, node: Any, nodes: list[Any], placed: dict[str, list[Any]], leaving: str
) -> str | None:
    """The first of ``pod``'s required anti-affinity terms that ``node`` breaks:
    a pod the term selects already runs in the node's topology domain (the
    node itself for kubernetes.io/hostname, its zone for a zone key). Pods on
    ``leaving`` (the node being drained) do not count: they go too."""
    affinity = pod.spec.affinity
    anti = affinity.pod_anti_affinity if affinity else None
    for term in (anti.required_during_scheduling_ignored_during_execution if anti else None) or []:
        key = term.topology_key
        domain = (node.metadata.labels or {}).get(key)
        if domain is None:
            continue  # the node has no such label: the term cannot place it with anyone
        namespaces = set(term.namespaces or []) or {pod.metadata.namespace}
        for other in nodes:
            name = other.metadata.name
            if name == leaving or (other.metadata.labels or {}).get(key) != domain:
                continue
            for there in placed.get(name, []):
                if (
                    there.metadata.uid != pod.metadata.uid
                    and not is_terminating(there)
                    and (there.status is None or there.status.phase not in ("Succeeded", "Failed"))
                    and there.metadata.namespace in namespaces
                    and selector_matches(term.label_selector, there.metadata.labels or {})
                ):
                    return (
                        f"required anti-affinity ({key}): {there.metadata.name} already runs "
                        f"on {name}"
                    )
    return None
