"""Kubernetes actions: delete pods (one, or one after another), cordon and
uncordon nodes, drain a node through the Eviction API.

Safety, for every action:
- ``dry_run`` (or the configuration key ``chaosray_dry_run: true``) reports
  what would be done and changes nothing;
- the configuration key ``chaosray_allowed_contexts`` (a list, or a comma
  separated string) refuses to act in any other kube context;
- ``max_pods`` (default: the configuration key ``chaosray_max_pods_per_action``,
  else 10) bounds how many pods one action may delete or evict;
- nothing is retried blindly: a refused eviction (PDB) is retried because
  the API server said "not now", nothing else is.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaosray import contract
from chaosray.k8s.client import REQUEST_TIMEOUT, core_v1
from chaosray.k8s.placement import choose_drain_node, pods_on_node
from chaosray.k8s.pods import (
    Disruption,
    PodSet,
    api_message,
    explain,
    is_ready,
    is_terminating,
    list_pods,
    observe_ready,
    pick_pod,
    read,
    record_disruption,
    require_pods,
    watch_pods,
)
from chaosray.k8s.safety import (
    CORDON_ANNOTATION,
    CORDON_LABEL,
    is_dry_run,
    pod_limit,
    require_allowed_context,
)

__all__ = [
    "cordon_node",
    "delete_pod",
    "delete_pods_sequentially",
    "drain_node",
    "uncordon_all",
    "uncordon_node",
]

logger = logging.getLogger("chaostoolkit")


def _deleted_at(pod: Any) -> tuple[datetime, str]:
    """When the deletion was requested, by the API server's clock: the
    deletionTimestamp it sets is the *end* of the grace period, so the grace
    period is taken off. Falls back to the local clock when the answer has none."""
    meta = pod.metadata if pod is not None and hasattr(pod, "metadata") else None
    if meta is not None and meta.deletion_timestamp is not None:
        grace = meta.deletion_grace_period_seconds or 0
        return meta.deletion_timestamp - timedelta(seconds=grace), "deletionTimestamp - grace"
    return datetime.now(UTC), "local clock"


def _delete(
    core: client.CoreV1Api,
    pod: Any,
    namespace: str,
    label_selector: str | None,
    grace_period: int | None,
) -> dict[str, Any]:
    """Delete exactly this pod (uid precondition: never a same-named successor)."""
    name = pod.metadata.name
    body = client.V1DeleteOptions(
        grace_period_seconds=grace_period,
        preconditions=client.V1Preconditions(uid=pod.metadata.uid),
    )
    try:
        answer = core.delete_namespaced_pod(
            name, namespace, body=body, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        raise explain(exc, f"delete pod {name} in {namespace}") from None
    at, source = _deleted_at(answer)
    record_disruption(Disruption(namespace, label_selector, name, pod.spec.node_name, at, "delete"))
    logger.info(f"Deleted pod {namespace}/{name} on node {pod.spec.node_name}")
    return {
        "pod": name,
        "uid": pod.metadata.uid,
        "node": pod.spec.node_name,
        "deleted_at": at.isoformat(),
        "deleted_at_source": source,
        "grace_period": grace_period,
        "dry_run": False,
        contract.DISRUPTIONS_KEY: [
            contract.disruption(
                "delete",
                at=at.isoformat(),
                at_source="client" if source == "local clock" else "api",
                pod=name,
                node=pod.spec.node_name,
                grace_period=grace_period,
            )
        ],
    }


def _choose(pods: list[Any], name: str | None, pick: str, seed: int | None, selector: str) -> Any:
    candidates = [p for p in pods if not is_terminating(p)]
    if name:
        chosen = next((p for p in candidates if p.metadata.name == name), None)
        if chosen is None:
            raise ActivityFailed(f"pod {name!r} is not a live pod matching {selector!r}")
        return chosen
    if not candidates:
        raise ActivityFailed(f"every pod matching {selector!r} is already terminating")
    return pick_pod(candidates, pick, seed)


def delete_pod(
    label_selector: str,
    namespace: str = "default",
    name: str | None = None,
    pick: str = "oldest",
    seed: int | None = None,
    grace_period: int | None = None,
    min_ready_remaining: int | None = None,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete one pod of `label_selector` in `namespace`: the pod `name`, else
    the `oldest` (default) or a `random` one (reproducible with `seed`), with
    an optional `grace_period` in seconds.

    With `min_ready_remaining`, refuses (and deletes nothing) when fewer Ready
    pods than that would remain. Returns `pod`, `uid`, `node`, `deleted_at`
    (the API server's deletionTimestamp when it sets one), `dry_run`.
    """
    dry = is_dry_run(dry_run, configuration)
    require_allowed_context(configuration, secrets, f"delete a pod matching {label_selector!r}")
    core = core_v1(secrets)
    pods, _ = require_pods(core, namespace, label_selector)
    victim = _choose(pods, name, pick, seed, label_selector)
    if min_ready_remaining is not None:
        remaining = sum(1 for p in pods if is_ready(p)) - (1 if is_ready(victim) else 0)
        if remaining < min_ready_remaining:
            raise ActivityFailed(
                f"refusing to delete {victim.metadata.name}: only {remaining} Ready pods of "
                f"{label_selector!r} would remain, fewer than min_ready_remaining="
                f"{min_ready_remaining}"
            )
    if dry:
        logger.info(f"[dry run] would delete pod {namespace}/{victim.metadata.name}")
        return {
            "pod": victim.metadata.name,
            "uid": victim.metadata.uid,
            "node": victim.spec.node_name,
            "deleted_at": None,
            "dry_run": True,
            contract.DISRUPTIONS_KEY: [
                contract.disruption(
                    "delete",
                    at=None,
                    at_source="client",
                    pod=victim.metadata.name,
                    node=victim.spec.node_name,
                    status="dry_run",
                )
            ],
        }
    return _delete(core, victim, namespace, label_selector, grace_period)


def _ready_enough_to_delete(
    core: client.CoreV1Api,
    namespace: str,
    label_selector: str,
    listing: Any,
    victim: Any,
    min_ready: int | None,
    timeout: float,
) -> tuple[int, int, float]:
    """Wait (watching the selector from ``listing``, its pod list) until
    deleting ``victim`` leaves at least ``min_ready`` Ready pods, for up to
    ``timeout`` seconds; returns the Ready
    count then, how many would be left, and the seconds waited."""
    started = time.monotonic()
    state = PodSet(listing.items)

    def left() -> int:
        ready = {p.metadata.name for p in state.ready()}
        return len(ready) - (1 if victim.metadata.name in ready else 0)

    def enough() -> bool:
        return min_ready is None or left() >= min_ready

    if not enough():
        version = str(listing.metadata.resource_version)
        logger.info(f"Waiting for a replacement to be Ready before deleting {victim.metadata.name}")
        for kind, obj in watch_pods(
            core, namespace, label_selector, version, started + max(0.0, timeout)
        ):
            state.apply(kind, obj)
            if enough():
                break
    return len(state.ready()), left(), time.monotonic() - started


def delete_pods_sequentially(
    label_selector: str,
    namespace: str = "default",
    count: int | None = None,
    interval: float = 120.0,
    min_ready: int | None = None,
    ready_timeout: float = 300.0,
    pick: str = "oldest",
    seed: int | None = None,
    grace_period: int | None = None,
    max_pods: int | None = None,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete the pods of `label_selector` one after another, `interval`
    seconds apart (default 120): `count` of them (default: every pod that
    matched at the start; replacements are never deleted), in `pick` order.

    Before each deletion (with `min_ready`) it waits up to `ready_timeout`
    seconds (default 300) until deleting the next pod leaves at least
    `min_ready` Ready, so a replacement still starting is never followed by
    the next deletion; if that does not happen it refuses, deletes nothing
    more, and fails with the records so far. After each deletion it watches
    the selector for `interval` seconds and checks that at least `min_ready`
    pods stayed Ready the whole time; if not, the sequence stops the same way.
    A planned pod that is gone (or terminating, or replaced) when its step
    comes was deleted by someone else: its step is recorded as skipped, the
    sequence goes on, and at the end the activity fails naming every skipped
    step (the sequence did not do what it planned: `completed` is false).
    Returns `steps` (per deletion: `pod`, `node`, `deleted_at`,
    `ready_before`, `waited_for_ready_s`, `min_ready_seen`, `ready_at_end`,
    `check`), `completed` (true: every planned deletion happened), `dry_run`.
    """
    dry = is_dry_run(dry_run, configuration)
    require_allowed_context(configuration, secrets, f"delete pods matching {label_selector!r}")
    if not isinstance(interval, int | float) or interval < 0:
        raise ActivityFailed(f"interval must be a number of seconds >= 0, got {interval!r}")
    core = core_v1(secrets)
    pods, _ = require_pods(core, namespace, label_selector)
    originals = [p for p in pods if not is_terminating(p)]
    ordered: list[Any] = []
    pool = list(originals)
    while pool:  # the whole deletion order, decided up front
        chosen = pick_pod(pool, pick, None if seed is None else seed + len(ordered))
        ordered.append(chosen)
        pool.remove(chosen)
    wanted = len(ordered) if count is None else count
    if not isinstance(wanted, int) or wanted < 1:
        raise ActivityFailed(f"count must be a whole number >= 1, got {count!r}")
    if wanted > len(ordered):
        raise ActivityFailed(
            f"count={wanted} but only {len(ordered)} live pods match {label_selector!r}"
        )
    limit = pod_limit(max_pods, configuration)
    if wanted > limit:
        raise ActivityFailed(
            f"refusing to delete {wanted} pods: more than max_pods={limit} "
            "(raise max_pods or chaosray_max_pods_per_action if you mean it)"
        )
    plan = ordered[:wanted]
    if dry:
        names = [p.metadata.name for p in plan]
        logger.info(f"[dry run] would delete, {interval:g}s apart: {', '.join(names)}")
        return {
            "steps": [{"pod": n, "dry_run": True} for n in names],
            "completed": True,
            "dry_run": True,
            contract.DISRUPTIONS_KEY: [
                contract.disruption("delete", at=None, at_source="client", pod=n, status="dry_run")
                for n in names
            ],
        }
    steps: list[dict[str, Any]] = []
    disruptions: list[contract.Disruption] = []
    for index, pod in enumerate(plan, start=1):
        listing = list_pods(core, namespace, label_selector)
        current = {p.metadata.name: p for p in listing.items}
        live = current.get(pod.metadata.name)
        if live is None or live.metadata.uid != pod.metadata.uid or is_terminating(live):
            steps.append({"step": index, "pod": pod.metadata.name, "skipped": "already gone"})
            disruptions.append(
                contract.disruption(
                    "delete",
                    at=None,
                    at_source="client",
                    pod=pod.metadata.name,
                    status="skipped",
                    step=index,
                    skipped="already gone",
                )
            )
            continue
        ready_before, left, waited = _ready_enough_to_delete(
            core, namespace, label_selector, listing, live, min_ready, ready_timeout
        )
        if min_ready is not None and left < min_ready:
            raise ActivityFailed(
                f"sequence stopped before step {index}: deleting {pod.metadata.name} would "
                f"leave {left} Ready pods of "
                f"{label_selector!r}, fewer than min_ready={min_ready}, after waiting "
                f"{waited:.0f}s for a replacement to be Ready. Steps: {steps}"
            )
        record = _delete(core, live, namespace, label_selector, grace_period)
        seen = observe_ready(core, namespace, label_selector, interval)
        fewest, at_end = seen.fewest, seen.ready_at_end
        check = "passed" if min_ready is None or fewest >= min_ready else "failed"
        for item in record.pop(contract.DISRUPTIONS_KEY):
            item["details"].update(step=index, min_ready_seen=fewest, check=check)
            disruptions.append(item)
        steps.append(
            {
                "step": index,
                **record,
                "ready_before": ready_before,
                "waited_for_ready_s": waited,
                "min_ready_seen": fewest,
                "ready_at_end": at_end,
                "check": check,
            }
        )
        logger.info(f"Step {index}/{wanted}: deleted {record['pod']}; fewest Ready since: {fewest}")
        if check == "failed":
            raise ActivityFailed(
                f"sequence stopped after step {index}: only {fewest} pods of {label_selector!r} "
                f"were Ready after deleting {record['pod']}, fewer than min_ready={min_ready}. "
                f"Steps: {steps}"
            )
    skipped = [s for s in steps if s.get("skipped")]
    if skipped:
        listed = ", ".join(f"step {s['step']} ({s['pod']}: {s['skipped']})" for s in skipped)
        raise ActivityFailed(
            f"sequence incomplete (completed: False): {len(skipped)} of {wanted} planned "
            f"deletions of {label_selector!r} did not happen, the pod being gone before its "
            f"step (deleted by someone else): {listed}. Steps: {steps}"
        )
    return {
        "steps": steps,
        "completed": True,
        "dry_run": False,
        contract.DISRUPTIONS_KEY: disruptions,
    }


def _read_node(core: client.CoreV1Api, name: str) -> Any:
    try:
        return core.read_node(name, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise ActivityFailed(f"node {name!r} does not exist") from None
        raise explain(exc, f"read node {name}") from None


def cordon_node(
    name: str,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Mark node `name` unschedulable. The node is labelled and annotated as
    cordoned by chaosray, so `uncordon_all` restores exactly the nodes we
    cordoned; a node that was already cordoned is left as it was (and not
    marked ours). Returns `node`, `cordoned`, `was_cordoned`, `dry_run`."""
    dry = is_dry_run(dry_run, configuration)
    require_allowed_context(configuration, secrets, f"cordon node {name!r}")
    core = core_v1(secrets)
    node = _read_node(core, name)
    was = bool(node.spec.unschedulable)
    at = datetime.now(UTC).isoformat()
    if not was and not dry:
        patch = {
            "spec": {"unschedulable": True},
            "metadata": {
                "labels": {CORDON_LABEL: "true"},
                "annotations": {CORDON_ANNOTATION: at},
            },
        }
        try:
            core.patch_node(name, patch, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            raise explain(exc, f"cordon node {name}") from None
        logger.info(f"Cordoned node {name}")
    status: Literal["done", "dry_run", "skipped"] = (
        "dry_run" if dry else ("skipped" if was else "done")
    )
    return {
        "node": name,
        "cordoned": True,
        "was_cordoned": was,
        "dry_run": dry,
        contract.DISRUPTIONS_KEY: [
            contract.disruption("cordon", at=at, at_source="client", node=name, status=status)
        ],
    }


def uncordon_node(
    name: str,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Mark node `name` schedulable again and remove chaosray's cordon marks.
    Returns `node`, `was_cordoned`, `dry_run`."""
    dry = is_dry_run(dry_run, configuration)
    require_allowed_context(configuration, secrets, f"uncordon node {name!r}")
    core = core_v1(secrets)
    node = _read_node(core, name)
    was = bool(node.spec.unschedulable)
    if not dry:
        _uncordon(core, name)
    return {"node": name, "was_cordoned": was, "dry_run": dry}


def _uncordon(core: client.CoreV1Api, name: str) -> None:
    patch = {
        "spec": {"unschedulable": None},
        "metadata": {"labels": {CORDON_LABEL: None}, "annotations": {CORDON_ANNOTATION: None}},
    }
    try:
        core.patch_node(name, patch, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:  # a node that went away needs no uncordon
            raise explain(exc, f"uncordon node {name}") from None
    logger.info(f"Uncordoned node {name}")


def uncordon_all(
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Uncordon every node that chaosray cordoned (and only those), for
    rollbacks and cleanup. Idempotent: with nothing of ours cordoned it does
    nothing. Returns `uncordoned` (node names) and `dry_run`."""
    dry = is_dry_run(dry_run, configuration)
    require_allowed_context(configuration, secrets, "uncordon nodes")
    core = core_v1(secrets)
    nodes = read(
        lambda: core.list_node(label_selector=CORDON_LABEL, _request_timeout=REQUEST_TIMEOUT),
        "list nodes cordoned by chaosray",
    ).items
    names = sorted(n.metadata.name for n in nodes)
    if not dry:
        for name in names:
            _uncordon(core, name)
    return {"uncordoned": names, "dry_run": dry}


def _drainable(
    pods: list[Any], force: bool, delete_emptydir_data: bool
) -> tuple[list[Any], list[dict[str, str]], list[dict[str, str]]]:
    """Pods a drain evicts, those it skips (with the reason), and those it
    refuses to evict without being told (as ``kubectl drain`` does: pods no
    controller recreates need ``force``, pods with emptyDir data need
    ``delete_emptydir_data``)."""
    evict, skipped, refused = [], [], []
    for pod in pods:
        owners = pod.metadata.owner_references or []
        annotations = pod.metadata.annotations or {}
        where = f"{pod.metadata.namespace}/{pod.metadata.name}"
        if "kubernetes.io/config.mirror" in annotations:
            skipped.append({"pod": where, "reason": "mirror pod"})
        elif any(o.kind == "DaemonSet" for o in owners):
            skipped.append({"pod": where, "reason": "DaemonSet pod"})
        elif pod.status and pod.status.phase in ("Succeeded", "Failed"):
            skipped.append({"pod": where, "reason": f"already {pod.status.phase}"})
        elif is_terminating(pod):
            skipped.append({"pod": where, "reason": "already terminating"})
        else:
            if not force and not any(o.controller for o in owners):
                refused.append(
                    {"pod": where, "reason": "no controller would recreate it (force: true)"}
                )
            empty_dirs = [v.name for v in pod.spec.volumes or [] if v.empty_dir is not None]
            if empty_dirs and not delete_emptydir_data:
                refused.append(
                    {
                        "pod": where,
                        "reason": f"emptyDir data ({', '.join(empty_dirs)}) would be lost "
                        "(delete_emptydir_data: true)",
                    }
                )
            evict.append(pod)
    return evict, skipped, refused


def drain_node(
    name: str | None = None,
    label_selector: str | None = None,
    namespace: str = "default",
    avoid_label_selector: str | None = None,
    force: bool = False,
    delete_emptydir_data: bool = False,
    timeout: float = 300.0,
    grace_period: int | None = None,
    retry_interval: float = 1.0,
    termination_timeout: float = 60.0,
    uncordon_on_failure: bool = True,
    max_pods: int | None = None,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Drain a node through the Eviction API, so PodDisruptionBudgets are
    respected: cordon it, then evict every pod on it except DaemonSet and
    mirror pods.

    The node is `name`, else the node of the oldest Ready pod of
    `label_selector` in `namespace` among the nodes that run no pod of
    `avoid_label_selector` (give the Ray head's selector, so a worker drain
    does not take the head with it). As `kubectl drain`, it refuses, before
    changing anything and listing them, pods no controller recreates (unless
    `force`) and pods with emptyDir volumes (unless `delete_emptydir_data`:
    Ray pods have one for /dev/shm). An eviction refused by a PDB (HTTP 429)
    is retried with backoff (from `retry_interval` seconds, doubling up to 10)
    until `timeout` seconds have passed since the drain started; the drain
    then fails, naming the pods still there, and uncordons the node unless
    `uncordon_on_failure` is false. Every evicted pod must be gone within
    `termination_timeout` seconds (default 60) of the evictions, or the drain
    fails. At most `max_pods` pods are evicted.

    Returns `node`, `chosen_by` (the pod whose node it is, when chosen by
    selector), `co_located` (every pod on the node besides that one),
    `pods` (per pod: `pod`, `evicted_at`, `attempts`, `refusals` (429s),
    `terminated_s`: eviction to gone; a pod the API server said was gone
    (404, or 409: replaced) before its eviction has `note: already gone` and
    no `evicted_at`, and the drain fails if that leaves nothing evicted),
    `skipped`, `duration_s`, `dry_run`
    (a dry run also lists in `refused` the pods a real one would refuse).
    The node stays cordoned on success: uncordon it (or use `uncordon_all` in
    the rollbacks).
    """
    dry = is_dry_run(dry_run, configuration)
    core = core_v1(secrets)
    chosen_by = None
    if not name:
        if not label_selector:
            raise ActivityFailed(
                "give the node name, or the label_selector of a pod whose node to drain"
            )
        target = choose_drain_node(core, namespace, label_selector, avoid_label_selector)
        name, chosen_by = target.node, f"{namespace}/{target.pod.metadata.name}"
    require_allowed_context(configuration, secrets, f"drain node {name!r}")
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ActivityFailed(f"timeout must be a positive number of seconds, got {timeout!r}")
    _read_node(core, name)
    started = time.monotonic()
    on_node = pods_on_node(core, name)
    co_located = sorted(
        f"{p.metadata.namespace}/{p.metadata.name}"
        for p in on_node
        if f"{p.metadata.namespace}/{p.metadata.name}" != chosen_by
    )
    evict, skipped, refused = _drainable(on_node, force, delete_emptydir_data)
    if refused and not dry:
        listed = "; ".join(f"{r['pod']}: {r['reason']}" for r in refused)
        raise ActivityFailed(f"refusing to drain {name} (nothing changed): {listed}")
    limit = pod_limit(max_pods, configuration)
    if len(evict) > limit:
        raise ActivityFailed(
            f"refusing to drain {name}: it runs {len(evict)} pods to evict, more than "
            f"max_pods={limit}"
        )
    if dry:
        return {
            "node": name,
            "chosen_by": chosen_by,
            "co_located": co_located,
            "pods": [{"pod": f"{p.metadata.namespace}/{p.metadata.name}"} for p in evict],
            "skipped": skipped,
            "refused": refused,  # a real run would refuse to start
            "dry_run": True,
            contract.DISRUPTIONS_KEY: [
                contract.disruption(
                    "drain", at=None, at_source="client", node=name, status="dry_run"
                ),
                *(
                    contract.disruption(
                        "evict",
                        at=None,
                        at_source="client",
                        node=name,
                        status="dry_run",
                        pod=f"{p.metadata.namespace}/{p.metadata.name}",
                    )
                    for p in evict
                ),
            ],
        }
    cordon = cordon_node(name, configuration=configuration, secrets=secrets)
    records = {
        f"{p.metadata.namespace}/{p.metadata.name}": {
            "pod": f"{p.metadata.namespace}/{p.metadata.name}",
            "attempts": 0,
            "refusals": 0,
            "evicted_at": None,
            "terminated_s": None,
        }
        for p in evict
    }
    try:
        _evict_all(core, evict, records, started + timeout, grace_period, retry_interval)
        if evict and not any(r["evicted_at"] for r in records.values()):
            raise ActivityFailed(
                f"it evicted none of the {len(records)} pods it planned to: "
                f"{', '.join(records)} already gone (deleted by someone else)"
            )
        _wait_gone(core, name, records, time.monotonic() + termination_timeout)
    except BaseException as exc:
        if uncordon_on_failure and not cordon["was_cordoned"]:
            _uncordon(core, name)
        if isinstance(exc, ActivityFailed):
            raise ActivityFailed(f"drain of node {name} failed: {exc}") from None
        raise
    drained_at = cordon[contract.DISRUPTIONS_KEY][0]["at"]
    return {
        "node": name,
        "chosen_by": chosen_by,
        "co_located": co_located,
        "pods": list(records.values()),
        "skipped": skipped,
        "duration_s": time.monotonic() - started,
        "dry_run": False,
        contract.DISRUPTIONS_KEY: [
            contract.disruption("drain", at=drained_at, at_source="client", node=name),
            *(
                contract.disruption(
                    "evict",
                    at=r["evicted_at"],
                    at_source="client",
                    node=name,
                    pod=str(r["pod"]),
                    status=_eviction_status(r),
                    refusals=r["refusals"],
                    terminated_s=r["terminated_s"],
                    **({"skipped": r["note"]} if r.get("note") else {}),
                )
                for r in records.values()
            ),
        ],
    }


def _eviction_status(record: dict[str, Any]) -> Literal["done", "skipped", "pending"]:
    """An evicted pod is done; one that was gone before its eviction is
    skipped (nothing was evicted); any other is pending."""
    if record["evicted_at"]:
        return "done"
    return "skipped" if record.get("note") else "pending"


def _evict_all(
    core: client.CoreV1Api,
    pods: list[Any],
    records: dict[str, dict[str, Any]],
    deadline: float,
    grace_period: int | None,
    retry_interval: float,
) -> None:
    pending = list(pods)
    delay = max(0.1, retry_interval)
    while pending:
        still = []
        for pod in pending:
            key = f"{pod.metadata.namespace}/{pod.metadata.name}"
            record = records[key]
            record["attempts"] += 1
            body = client.V1Eviction(
                metadata=client.V1ObjectMeta(
                    name=pod.metadata.name, namespace=pod.metadata.namespace
                ),
                delete_options=client.V1DeleteOptions(
                    grace_period_seconds=grace_period,
                    preconditions=client.V1Preconditions(uid=pod.metadata.uid),
                ),
            )
            try:
                core.create_namespaced_pod_eviction(
                    pod.metadata.name,
                    pod.metadata.namespace,
                    body,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            except ApiException as exc:
                if exc.status == 429:
                    record["refusals"] += 1
                    record["last_refusal"] = api_message(exc)
                    still.append(pod)
                    continue
                if exc.status in (404, 409):  # gone already, or replaced (uid changed)
                    record["note"] = "already gone"  # not evicted: no evicted_at
                    logger.info(f"Pod {key} was already gone: nothing to evict")
                    continue
                raise explain(exc, f"evict pod {key}") from None
            at = datetime.now(UTC)
            record["evicted_at"] = at.isoformat()
            record["_evicted_mono"] = time.monotonic()
            record_disruption(
                Disruption(
                    pod.metadata.namespace,
                    None,
                    pod.metadata.name,
                    pod.spec.node_name,
                    at,
                    "evict",
                    dict(pod.metadata.labels or {}),
                )
            )
            logger.info(f"Evicted pod {key}")
        pending = still
        if pending:
            if time.monotonic() + delay > deadline:
                names = ", ".join(f"{p.metadata.namespace}/{p.metadata.name}" for p in pending)
                reasons = {
                    records[k]["last_refusal"] for k in records if "last_refusal" in records[k]
                }
                raise ActivityFailed(
                    f"timed out; still not evicted: {names} (refused by a PodDisruptionBudget: "
                    f"{'; '.join(sorted(reasons))})"
                )
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _wait_gone(
    core: client.CoreV1Api, node: str, records: dict[str, dict[str, Any]], deadline: float
) -> None:
    """Watch the evicted pods until they are gone; record eviction-to-gone time."""
    listing = read(
        lambda: core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", _request_timeout=REQUEST_TIMEOUT
        ),
        f"list pods on node {node}",
    )
    present = {f"{p.metadata.namespace}/{p.metadata.name}": p.metadata.uid for p in listing.items}
    evicted = {k for k, r in records.items() if r.get("_evicted_mono")}
    for key in evicted - set(present):
        _mark_gone(records[key])
    waiting = evicted & set(present)
    if waiting:
        version = str(listing.metadata.resource_version)
        for kind, obj in watch_pods(core, None, None, version, deadline, f"spec.nodeName={node}"):
            names = (
                {f"{p.metadata.namespace}/{p.metadata.name}" for p in obj}
                if kind == "RELIST"
                else None
            )
            if kind == "DELETED":
                key = f"{obj.metadata.namespace}/{obj.metadata.name}"
                if key in waiting:
                    _mark_gone(records[key])
                    waiting.discard(key)
            elif names is not None:
                for key in waiting - names:
                    _mark_gone(records[key])
                waiting &= names
            if not waiting:
                break
    for record in records.values():
        record.pop("_evicted_mono", None)
    if waiting:
        raise ActivityFailed(
            "evicted pods did not terminate within the termination timeout: "
            + ", ".join(sorted(waiting))
        )


def _mark_gone(record: dict[str, Any]) -> None:
    record["terminated_s"] = time.monotonic() - record["_evicted_mono"]
