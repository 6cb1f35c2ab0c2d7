"""Redis actions: delete a Redis pod chosen by its replication role."""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosray import contract
from chaosray.k8s.actions import delete_pod
from chaosray.k8s.safety import require_allowed_context
from chaosray.redis.probes import record_deleted_role, single_primary

__all__ = ["delete_redis_pod"]

logger = logging.getLogger("chaostoolkit")

ROLES = ("primary", "replica")


def delete_redis_pod(
    role: str = "replica",
    namespace: str = "default",
    label_selector: str = "app=redis",
    min_ready_remaining: int | None = None,
    mode: str = "exec",
    port: int = 6379,
    container: str | None = "redis",
    addresses: dict[str, str] | None = None,
    grace_period: int | None = None,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete one Redis pod of `label_selector`, chosen by its replication
    role as Redis itself reports it (`INFO replication`): the `primary`, or a
    `replica` (the default: the first by name). Losing a replica must not
    disturb Ray; losing the primary stops Ray's GCS until the Sentinels have
    promoted a replica and the head has restarted on it, so measure that one
    with a tolerance for the restart.

    Refuses (deletes nothing) when the replication is not whole (no single
    primary) or no pod has the role, and with `min_ready_remaining` when
    fewer Ready pods would remain. `mode`, `port`, `container`, `addresses`:
    as for `redis_replication_status`. Returns what `delete_pod` returns plus
    `role`, `primary_before` and `replicas_before` (`role` and
    `primary_before` also in the disruption block's details); `wait_for_redis_rejoin`
    then reports the Sentinel failover (which pod is primary afterwards)."""
    if role not in ROLES:
        raise ActivityFailed(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    # Before the first call to the cluster: asking a forbidden one is refused too.
    require_allowed_context(configuration, secrets, f"delete the Redis {role}")
    status, primary = single_primary(
        "refusing to delete a Redis pod",
        namespace, label_selector, mode, port, container, addresses, secrets,
    )  # fmt: skip
    replicas = sorted(status["replicas"])
    if role == "primary":
        victim = primary
    elif replicas:
        victim = replicas[0]
    else:
        raise ActivityFailed(f"no Redis replica matches {label_selector!r} in {namespace!r}")
    result = delete_pod(
        label_selector,
        namespace,
        name=victim,
        grace_period=grace_period,
        min_ready_remaining=min_ready_remaining,
        dry_run=dry_run,
        configuration=configuration,
        secrets=secrets,
    )
    if not result["dry_run"]:
        record_deleted_role(namespace, label_selector, victim, role, primary)
    logger.info(f"Redis {role} {victim} {'would be ' if result['dry_run'] else ''}deleted")
    # The role goes into the disruption block too: the report reads the
    # blocks, not this output's own fields (chaosray.causes: the rule on a
    # Redis primary's loss).
    blocks = [
        {**block, "details": {**block.get("details", {}), "role": role, "primary_before": primary}}
        for block in result.get(contract.DISRUPTIONS_KEY) or []
    ]
    return {
        **result,
        "role": role,
        "primary_before": primary,
        "replicas_before": replicas,
        contract.DISRUPTIONS_KEY: blocks,
    }
