"""KubeRay-aware actions: delete the Ray head pod or a worker pod.

They select pods by KubeRay's labels and delete through
:func:`chaosray.k8s.actions.delete_pod`, so they share its safety: dry run,
context allow-list, uid precondition, and the recorded deletion time that
the waits measure recovery from.
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosray.k8s.actions import delete_pod
from chaosray.k8s.safety import is_dry_run, require_allowed_context
from chaosray.ray.dashboard import (
    Dashboard,
    DashboardUnreachable,
    nodes,
    ray_selector,
    record_deleted_head,
    resolve_cluster_name,
)

__all__ = ["delete_ray_head", "delete_ray_worker"]

logger = logging.getLogger("chaostoolkit")


def _alive_head_node(
    namespace: str,
    cluster: str,
    dashboard_url: str | None,
    head_service: str | None,
    secrets: Secrets,
) -> str | None:
    """The Ray node id of the ALIVE head, or None when the dashboard does not answer."""
    dashboard = Dashboard.for_cluster(namespace, cluster, dashboard_url, head_service)
    try:
        table = nodes(dashboard, secrets)
    except DashboardUnreachable as exc:
        logger.info(f"Ray head's node id unknown (dashboard: {exc})")
        return None
    return next(
        (str(n["node_id"]) for n in table if n.get("is_head_node") and n.get("state") == "ALIVE"),
        None,
    )


def delete_ray_head(
    cluster: str | None = None,
    service: str | None = None,
    namespace: str = "default",
    grace_period: int | None = None,
    dashboard_url: str | None = None,
    head_service: str | None = None,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete the head pod of RayCluster `cluster` (or of RayService
    `service`'s active cluster). First asks the dashboard (as the probes
    reach it) for the head's Ray node id, which `ray_head_recovery` then
    expects DEAD in the new head's node table. Returns `pod`, `node`,
    `deleted_at`, `dry_run`, `cluster` and `ray_node_id` (null when the
    dashboard did not answer)."""
    # Before the first call to the cluster: asking a forbidden one is refused too.
    require_allowed_context(configuration, secrets, "delete the Ray head")
    name = resolve_cluster_name(namespace, cluster, service, secrets)
    dry = is_dry_run(dry_run, configuration)
    head_node = (
        None if dry else _alive_head_node(namespace, name, dashboard_url, head_service, secrets)
    )
    result = delete_pod(
        ray_selector(name, "head"),
        namespace,
        grace_period=grace_period,
        dry_run=dry,
        configuration=configuration,
        secrets=secrets,
    )
    if not result["dry_run"]:
        record_deleted_head(namespace, name, head_node)
    return {**result, "cluster": name, "ray_node_id": head_node}


def delete_ray_worker(
    cluster: str | None = None,
    service: str | None = None,
    namespace: str = "default",
    group: str | None = None,
    name: str | None = None,
    pick: str = "oldest",
    seed: int | None = None,
    grace_period: int | None = None,
    min_ready_remaining: int | None = None,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete one worker pod of RayCluster `cluster` (or RayService `service`'s
    active cluster), optionally of worker group `group`: the pod `name`, else
    the `oldest` or a `random` one (`seed`). With `min_ready_remaining` it
    refuses when fewer Ready workers would remain. Returns `pod`, `node`,
    `deleted_at`, `dry_run`, `cluster`."""
    cluster_name = resolve_cluster_name(namespace, cluster, service, secrets)
    result = delete_pod(
        ray_selector(cluster_name, "worker", group),
        namespace,
        name=name,
        pick=pick,
        seed=seed,
        grace_period=grace_period,
        min_ready_remaining=min_ready_remaining,
        dry_run=dry_run,
        configuration=configuration,
        secrets=secrets,
    )
    return {**result, "cluster": cluster_name}
