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


# Nodes a drain must spare, and why, recorded by probes that know what a
# label cannot say (the Redis primary's node: chaosray.redis.probes.
# redis_primary_node): subject -> (node, why). Per process, like the other
# registries (docs/architecture.md); each subject keeps its latest answer.
_spared: dict[str, tuple[str, str]] = {}


def spare_in_drains(subject: str, node: str | None, why: str = "") -> None:
    """Have every later drain choice (``drain_node``, ``node_running_pod``,
    ``spare_node_for_drain``) avoid ``node`` because of ``why``; None
    forgets the subject's node."""
    if node is None:
        _spared.pop(subject, None)
    else:
        _spared[subject] = (node, why)


def spared_in_drains() -> dict[str, str]:
    """node -> why, for every node a drain must spare."""
    spared: dict[str, str] = {}
    for node, why in _spared.values():
        _add_reason(spared, node, why)
    return spared


def _add_reason(reasons: dict[str, str], node: str, why: str) -> None:
    reasons[node] = f"{reasons[node]}, {why}" if node in reasons else why


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
    ``avoid_label_selector`` (the Ray head, say) and that no probe asked
    drains to spare (:func:`spare_in_drains`: the Redis primary's node)."""
    pods, _ = require_pods(core, namespace, label_selector)
    ready = [p for p in pods if is_ready(p) and p.spec.node_name]
    if not ready:
        raise ActivityFailed(f"no Ready, scheduled pod matches {label_selector!r} in {namespace!r}")
    avoided = dict(spared_in_drains())
    if avoid_label_selector:
        for pod in list_pods(core, namespace, avoid_label_selector).items:
            if pod.spec.node_name and not is_terminating(pod):
                why = f"runs {pod.metadata.name} ({avoid_label_selector})"
                _add_reason(avoided, pod.spec.node_name, why)
    candidates = [p for p in ready if p.spec.node_name not in avoided]
    if not candidates:
        where = "; ".join(
            f"{p.metadata.name} on {p.spec.node_name}, which {avoided[p.spec.node_name]}"
            for p in ready
        )
        raise ActivityFailed(
            f"every node that runs a Ready pod of {label_selector!r} is one a drain must "
            f"spare ({where}): no node to drain without it; spread them apart"
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


def _untolerated_taint(pod: Any, node: Any) -> Any | None:
    """The first NoSchedule or NoExecute taint of ``node`` that ``pod`` does not tolerate."""
    return next(
        (
            t
            for t in node.spec.taints or []
            if t.effect in ("NoSchedule", "NoExecute") and not _tolerates(pod, t)
        ),
        None,
    )


def _live(pod: Any) -> bool:
    """Counted by the scheduler: not being deleted, not finished."""
    return not is_terminating(pod) and (
        pod.status is None or pod.status.phase not in ("Succeeded", "Failed")
    )


def _requirement_holds(requirement: Any, value: str | None) -> bool:
    """One node selector requirement (matchExpressions or matchFields)
    against a node's label or field value."""
    values = requirement.values or []
    operator = requirement.operator
    if operator in ("Gt", "Lt"):
        try:
            have, want = int(value or ""), int(values[0])
        except (ValueError, IndexError):
            return False
        return have > want if operator == "Gt" else have < want
    return {
        "In": value is not None and value in values,
        "NotIn": value is None or value not in values,
        "Exists": value is not None,
        "DoesNotExist": value is None,
    }.get(operator, False)


def node_affinity_mismatch(pod: Any, node: Any) -> str | None:
    """Why ``node`` fails ``pod``'s nodeSelector or required node affinity
    (terms ORed, the requirements of a term ANDed), or None."""
    labels = node.metadata.labels or {}
    for key, value in (pod.spec.node_selector or {}).items():
        if labels.get(key) != value:
            return f"nodeSelector {key}={value} does not match"
    affinity = pod.spec.affinity
    node_affinity = affinity.node_affinity if affinity else None
    required = (
        node_affinity.required_during_scheduling_ignored_during_execution if node_affinity else None
    )
    if required is None or not required.node_selector_terms:
        return None
    fields = {"metadata.name": node.metadata.name}
    for term in required.node_selector_terms:
        expressions = term.match_expressions or []
        by_field = term.match_fields or []
        if (
            (expressions or by_field)
            and all(_requirement_holds(r, labels.get(r.key)) for r in expressions)
            and all(_requirement_holds(r, fields.get(r.key)) for r in by_field)
        ):
            return None
    return "required node affinity does not match"


def why_pod_does_not_fit(pod: Any, node: Any, pods_there: list[Any]) -> str | None:
    """None when ``pod`` could be scheduled on ``node`` as far as readiness,
    cordon, taints, nodeSelector, required node affinity and requested
    CPU/memory go (not pod affinity, spread or ports: see
    :func:`anti_affinity_conflict` and :func:`spread_conflict`); else the
    first reason it could not."""
    ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
    if ready is None or ready.status != "True":
        return "not Ready"
    if node.spec.unschedulable:
        return "cordoned"
    taint = _untolerated_taint(pod, node)
    if taint is not None:
        return f"taint {taint.key}={taint.value or ''}:{taint.effect} not tolerated"
    mismatch = node_affinity_mismatch(pod, node)
    if mismatch:
        return mismatch
    wanted = pod_requests(pod)
    allocatable = node.status.allocatable or {}
    for name in RESOURCES:
        if not wanted[name]:
            continue
        used = sum(pod_requests(p)[name] for p in pods_there if _live(p))
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
    return all(_requirement_holds(e, labels.get(e.key)) for e in selector.match_expressions or [])


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
                    and _live(there)
                    and there.metadata.namespace in namespaces
                    and selector_matches(term.label_selector, there.metadata.labels or {})
                ):
                    return (
                        f"required anti-affinity ({key}): {there.metadata.name} already runs "
                        f"on {name}"
                    )
    return None


def spread_conflict(
    pod: Any, node: Any, nodes: list[Any], placed: dict[str, list[Any]], leaving: str
) -> str | None:
    """The first of ``pod``'s DoNotSchedule topology spread constraints that
    placing it on ``node`` breaks, as the scheduler's PodTopologySpread
    filter counts: the matching pods of its namespace in each domain of the
    nodes that carry every constraint's key (and, with the default
    nodeAffinityPolicy Honor, match its node affinity; with nodeTaintsPolicy
    Honor, tolerate the taints, cordon included), and
    ``matching + itself - the emptiest domain > maxSkew``. The drained node
    ``leaving`` stays a domain (cordoned, it is only tainted, and the default
    nodeTaintsPolicy Ignore keeps it), emptied of its pods: so a spread by
    zone whose zone has one node cannot move anywhere within maxSkew 1."""
    constraints = [
        c
        for c in pod.spec.topology_spread_constraints or []
        if (c.when_unsatisfiable or "DoNotSchedule") == "DoNotSchedule"
    ]
    keys = {c.topology_key for c in constraints}
    own = pod.metadata.labels or {}
    for constraint in constraints:
        key = constraint.topology_key
        domain = (node.metadata.labels or {}).get(key)
        if domain is None:
            return f"topology spread ({key}): the node has no {key} label"

        def counted(there: Any, constraint: Any = constraint) -> bool:
            labels = there.metadata.labels or {}
            return (
                there.metadata.uid != pod.metadata.uid
                and _live(there)
                and there.metadata.namespace == pod.metadata.namespace
                and selector_matches(constraint.label_selector, labels)
                and all(
                    labels.get(k) == own[k] for k in constraint.match_label_keys or [] if k in own
                )
            )

        counts: dict[str, int] = {}
        for other in nodes:
            labels = other.metadata.labels or {}
            if not keys <= labels.keys():
                continue
            if (constraint.node_affinity_policy or "Honor") == "Honor" and node_affinity_mismatch(
                pod, other
            ):
                continue
            if constraint.node_taints_policy == "Honor" and (
                other.metadata.name == leaving
                or other.spec.unschedulable
                or _untolerated_taint(pod, other) is not None
            ):
                continue
            there = [] if other.metadata.name == leaving else placed.get(other.metadata.name, [])
            counts[labels[key]] = counts.get(labels[key], 0) + sum(map(counted, there))
        if domain not in counts:
            continue  # the node is not one the constraint counts (its affinity says why)
        emptiest = min(counts.values())
        if constraint.min_domains and len(counts) < constraint.min_domains:
            emptiest = 0
        itself = int(selector_matches(constraint.label_selector, own))
        skew = counts[domain] + itself - emptiest
        if skew > constraint.max_skew:
            return (
                f"topology spread ({key}, maxSkew {constraint.max_skew}): {counts[domain]} "
                f"matching pod(s) in {domain}, {emptiest} in the emptiest domain, so a skew of "
                f"{skew}"
            )
    return None
