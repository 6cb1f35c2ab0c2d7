"""Deleting what in-cluster k6 runs left behind (no activities)."""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.types import Secrets
from kubernetes.client.exceptions import ApiException

from chaosray.k8s.client import REQUEST_TIMEOUT, batch_v1, core_v1, custom_objects
from chaosray.k8s.pods import explain, read
from chaosray.load.k6_cluster.names import SELECTOR, TESTRUN_API
from chaosray.load.k6_cluster.runs import registered_runs
from chaosray.wait import WaitTimeout, wait_until

__all__: list[str] = []  # engine; the control is chaosray.load.control

logger = logging.getLogger("chaostoolkit")


def stop_all_cluster_runs() -> int:
    """Delete what every in-cluster run of this process created (cleanup,
    Ctrl-C); returns how many runs there were."""
    runs = registered_runs()
    for run in runs:
        run.delete()
    return len(runs)


def _leftovers(namespace: str | None, secrets: Secrets) -> tuple[list[Any], list[Any], list[Any]]:
    """The k6 ConfigMaps, Jobs and TestRuns (as dicts) chaosray created, by label."""
    core, batch, custom = core_v1(secrets), batch_v1(secrets), custom_objects(secrets)
    kwargs: dict[str, Any] = {"label_selector": SELECTOR, "_request_timeout": REQUEST_TIMEOUT}
    if namespace:
        jobs = read(lambda: batch.list_namespaced_job(namespace, **kwargs), "list k6 Jobs").items
        maps = read(lambda: core.list_namespaced_config_map(namespace, **kwargs), "list k6 maps")
    else:
        jobs = read(lambda: batch.list_job_for_all_namespaces(**kwargs), "list k6 Jobs").items
        maps = read(lambda: core.list_config_map_for_all_namespaces(**kwargs), "list k6 maps")
    group, version, plural = TESTRUN_API
    try:
        if namespace:
            runs = custom.list_namespaced_custom_object(group, version, namespace, plural, **kwargs)
        else:
            runs = custom.list_cluster_custom_object(group, version, plural, **kwargs)
        testruns = list(runs.get("items") or [])
    except ApiException as exc:
        if exc.status != 404:  # 404: no k6-operator, so no TestRun
            raise explain(exc, "list k6 TestRuns") from None
        testruns = []
    return list(maps.items), list(jobs), testruns


def find_leftover_runs(namespace: str | None = None, secrets: Secrets = None) -> dict[str, Any]:
    """What :func:`delete_leftover_runs` would delete, deleting nothing."""
    maps, jobs, testruns = _leftovers(namespace, secrets)
    return {
        "jobs": [f"{j.metadata.namespace}/{j.metadata.name}" for j in jobs],
        "testruns": [f"{r['metadata']['namespace']}/{r['metadata']['name']}" for r in testruns],
        "configmaps": [f"{m.metadata.namespace}/{m.metadata.name}" for m in maps],
    }


def delete_leftover_runs(namespace: str | None = None, secrets: Secrets = None) -> dict[str, Any]:
    """Delete every k6 Job, TestRun and ConfigMap chaosray left behind (by
    label), in ``namespace`` or in all namespaces, and wait for their pods to
    go. Returns what was deleted: ``{"jobs": [...], "testruns": [...],
    "configmaps": [...]}`` as ``namespace/name``."""
    core, batch, custom = core_v1(secrets), batch_v1(secrets), custom_objects(secrets)
    deleted: dict[str, list[str]] = {"jobs": [], "testruns": [], "configmaps": []}
    maps_items, jobs, testruns = _leftovers(namespace, secrets)
    group, version, plural = TESTRUN_API
    for cm in maps_items:
        ns, name = cm.metadata.namespace, cm.metadata.name
        try:
            core.delete_namespaced_config_map(name, ns, _request_timeout=REQUEST_TIMEOUT)
            deleted["configmaps"].append(f"{ns}/{name}")
        except ApiException as exc:
            if exc.status != 404:
                raise explain(exc, f"delete ConfigMap {ns}/{name}") from None
    for job in jobs:
        ns, name = job.metadata.namespace, job.metadata.name
        try:
            batch.delete_namespaced_job(
                name, ns, propagation_policy="Background", _request_timeout=REQUEST_TIMEOUT
            )
            deleted["jobs"].append(f"{ns}/{name}")
        except ApiException as exc:
            if exc.status != 404:
                raise explain(exc, f"delete Job {ns}/{name}") from None
    for run in testruns:
        ns, name = run["metadata"]["namespace"], run["metadata"]["name"]
        try:
            custom.delete_namespaced_custom_object(
                group, version, ns, plural, name, propagation_policy="Background",
                _request_timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
            deleted["testruns"].append(f"{ns}/{name}")
        except ApiException as exc:
            if exc.status != 404:
                raise explain(exc, f"delete TestRun {ns}/{name}") from None

    def pods_left() -> list[Any]:
        listing = (
            core.list_namespaced_pod(namespace, label_selector=SELECTOR)
            if namespace
            else core.list_pod_for_all_namespaces(label_selector=SELECTOR)
        )
        return list(listing.items)

    try:
        wait_until(
            lambda: not pods_left(),
            timeout=60,
            description="the k6 pods to be gone",
            ignore=(ApiException,),
        )
    except WaitTimeout as exc:
        logger.warning(f"K6 cleanup: {exc}")
    if any(deleted.values()):
        logger.warning(f"K6 cleanup: deleted leftovers {deleted}")
    return deleted
