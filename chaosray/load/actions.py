"""Actions of the load domain: clean up load that outlived its experiment."""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosray.k8s.safety import is_dry_run, require_allowed_context
from chaosray.load.k6_cluster import delete_leftover_runs, find_leftover_runs
from chaosray.load.k6_cluster.cleanup import describe_leftovers, leftover_runs_after
from chaosray.load.monitor import running_monitors

__all__ = ["delete_k6_leftovers", "stop_availability_monitors"]

logger = logging.getLogger("chaostoolkit")


def delete_k6_leftovers(
    namespace: str | None = None,
    fail_if_left: bool = False,
    timeout: float = 30.0,
    dry_run: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict[str, Any]:
    """Delete every k6 Job, TestRun and ConfigMap the K6 control created
    (found by chaosray's labels, `app.kubernetes.io/managed-by=chaosray,
    app.kubernetes.io/name=k6`; nothing else is touched) in `namespace`, or
    in all namespaces, and wait for their pods to go. Idempotent: for
    rollbacks and cleanup. With `dry_run` (or the configuration's
    `chaosray_dry_run`) it lists what it would delete and deletes nothing.

    Then it checks: `left` is what is still there (after waiting up to
    `timeout` seconds for the deletions to finish), and with `fail_if_left`
    the activity fails naming each object left (a dry run deletes nothing,
    so it fails when there was anything to delete). Returns `jobs`,
    `testruns` and `configmaps` deleted (or, in a dry run, to delete) as
    namespace/name, `left` (the same keys) and `dry_run`."""
    require_allowed_context(configuration, secrets, "delete k6 load Jobs and ConfigMaps")
    dry = is_dry_run(dry_run, configuration)
    if dry:
        result: dict[str, Any] = {**find_leftover_runs(namespace, secrets), "dry_run": True}
    else:
        result = {**delete_leftover_runs(namespace, secrets), "dry_run": False}
    deleted_any = any(result[key] for key in ("jobs", "testruns", "configmaps"))
    wait = float(timeout) if deleted_any and not dry else 0.0
    left = leftover_runs_after(namespace, secrets, wait)
    result["left"] = left
    if any(left.values()):
        where = f"namespace {namespace}" if namespace else "the cluster"
        why = " (dry run: nothing was deleted)" if dry else f" (after waiting {wait:g}s)"
        message = f"chaosray's load is still in {where}: {describe_leftovers(left)}{why}"
        if fail_if_left:
            raise ActivityFailed(message)
        logger.warning(f"K6 cleanup: {message}")
    return result


def stop_availability_monitors(
    baseline_s: float = 0.0,
    observe_s: float = 0.0,
    wait_for_start_s: float = 30.0,
) -> dict[str, Any]:
    """End the measurement: stop every availability monitor this experiment
    runs in the background, once each has measured at least `baseline_s +
    observe_s` seconds (the baseline before the disruption and the
    observation after it; at once when that has passed). Put it last in the
    method, so the monitor measures until the method ends and its own
    `duration` is only a cap. Waits up to `wait_for_start_s` for a monitor
    that has not started yet. Returns `stopped` (how many) and `waited_s`."""
    began = time.monotonic()
    deadline = began + max(0.0, float(wait_for_start_s))
    monitors = running_monitors()
    while not monitors and time.monotonic() < deadline:
        time.sleep(0.1)
        monitors = running_monitors()
    period = max(0.0, float(baseline_s) + float(observe_s))
    for monitor in monitors:
        started = monitor.started_at or time.time()
        remaining = started + period - time.time()
        if remaining > 0:
            logger.info(f"Availability monitor: measuring {remaining:.0f}s more")
            time.sleep(remaining)
        monitor.finish()
    return {"stopped": len(monitors), "waited_s": round(time.monotonic() - began, 3)}
