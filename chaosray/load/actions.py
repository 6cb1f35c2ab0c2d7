"""Actions of the load domain: clean up load that outlived its experiment."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosray.k8s.client import require_allowed_context
from chaosray.load.k6_cluster import delete_leftover_runs

__all__ = ["delete_k6_leftovers"]


def delete_k6_leftovers(
    namespace: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete every k6 Job, TestRun and ConfigMap the K6 control created
    (found by chaosray's labels) in `namespace`, or in all namespaces, and
    wait for their pods to go. Idempotent: for rollbacks and cleanup. Returns
    `jobs`, `testruns` and `configmaps` deleted, as namespace/name."""
    require_allowed_context(configuration, secrets, "delete k6 load Jobs and ConfigMaps")
    return delete_leftover_runs(namespace, secrets)
