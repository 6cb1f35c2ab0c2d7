"""Deleting what in-cluster k6 runs left behind (no activities)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from chaoslib.types import Secrets
from kubernetes.client.exceptions import ApiException

from chaosray.k8s.client import REQUEST_TIMEOUT, batch_v1, core_v1, custom_objects
from chaosray.k8s.pods import api_call, read
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


def _leftovers(namespace: str | None, secrets: Secrets) -> dict[str, list[tuple[str, str]]]:
    """The ``(namespace, name)`` of the k6 ConfigMaps, Jobs and TestRuns
    chaosray created, by label: ``{"configmaps": [...], "jobs": [...],
    "testruns": [...]}``."""
    core, batch, custom = core_v1(secrets), batch_v1(secrets), custom_objects(secrets)
    kwargs: dict[str, Any] = {"label_selector": SELECTOR, "_request_timeout": REQUEST_TIMEOUT}
    if namespace:
        jobs = read(lambda: batch.list_namespaced_job(namespace, **kwargs), "list k6 Jobs").items
        maps = read(lambda: core.list_namespaced_config_map(namespace, **kwargs), "list k6 maps")
    else:
        jobs = read(lambda: batch.list_job_for_all_namespaces(**kwargs), "list k6 Jobs").items
        maps = read(lambda: core.list_config_map_for_all_namespaces(**kwargs), "list k6 maps")
    group, version, plural = TESTRUN_API
    runs = api_call(
        lambda: (
            custom.list_namespaced_custom_object(group, version, namespace, plural, **kwargs)
            if namespace
            else custom.list_cluster_custom_object(group, version, plural, **kwargs)
        ),
        "list k6 TestRuns",
        missing_ok=True,  # 404: no k6-operator, so no TestRun
    )
    return {
        "configmaps": [(m.metadata.namespace, m.metadata.name) for m in maps.items],
        "jobs": [(j.metadata.namespace, j.metadata.name) for j in jobs],
        "testruns": [
            (r["metadata"]["namespace"], r["metadata"]["name"])
            for r in (runs or {}).get("items") or []
        ],
    }


def find_leftover_runs(namespace: str | None = None, secrets: Secrets = None) -> dict[str, Any]:
    """What :func:`delete_leftover_runs` would delete, deleting nothing."""
    found = _leftovers(namespace, secrets)
    return {
        key: [f"{ns}/{name}" for ns, name in found[key]]
        for key in ("jobs", "testruns", "configmaps")
    }


KINDS = {"jobs": "Job", "testruns": "TestRun", "configmaps": "ConfigMap"}


def describe_leftovers(found: dict[str, Any]) -> str:
    """``found`` (as :func:`find_leftover_runs` returns it) as text: ``Job
    ns/a, ConfigMap ns/a``; empty when nothing is there."""
    return ", ".join(f"{KINDS[key]} {name}" for key in KINDS for name in found.get(key) or [])


def leftover_runs_after(
    namespace: str | None = None, secrets: Secrets = None, timeout: float = 0.0
) -> dict[str, list[str]]:
    """What :func:`find_leftover_runs` still finds, after waiting up to
    ``timeout`` seconds for it to be nothing (a deletion the API server has
    accepted may take a moment, or forever while a finalizer holds the
    object)."""
    last: dict[str, list[str]] = {}

    def none_left() -> bool:
        last.clear()
        last.update(find_leftover_runs(namespace, secrets))
        return not any(last.values())

    with contextlib.suppress(WaitTimeout):  # what is left is the answer
        wait_until(none_left, timeout=max(0.0, float(timeout)), description="no k6 leftovers")
    return last


def _delete(delete: Callable[[str, str], object], namespace: str, name: str) -> bool:
    """True once deleted (``api_call(missing_ok=True)`` makes a 404 None)."""
    delete(namespace, name)
    return True


def delete_leftover_runs(namespace: str | None = None, secrets: Secrets = None) -> dict[str, Any]:
    """Delete every k6 Job, TestRun and ConfigMap chaosray left behind (by
    label), in ``namespace`` or in all namespaces, and wait for their pods to
    go. Returns what was deleted: ``{"jobs": [...], "testruns": [...],
    "configmaps": [...]}`` as ``namespace/name``."""
    core, batch, custom = core_v1(secrets), batch_v1(secrets), custom_objects(secrets)
    group, version, plural = TESTRUN_API
    background: dict[str, Any] = {
        "propagation_policy": "Background",
        "_request_timeout": REQUEST_TIMEOUT,
    }
    deletes: list[tuple[str, str, Callable[[str, str], object]]] = [  # in this order
        ("configmaps", "ConfigMap", lambda ns, name: core.delete_namespaced_config_map(
            name, ns, _request_timeout=REQUEST_TIMEOUT)),
        ("jobs", "Job", lambda ns, name: batch.delete_namespaced_job(name, ns, **background)),
        ("testruns", "TestRun", lambda ns, name: custom.delete_namespaced_custom_object(
            group, version, ns, plural, name, **background)),
    ]  # fmt: skip
    deleted: dict[str, list[str]] = {"jobs": [], "testruns": [], "configmaps": []}
    found = _leftovers(namespace, secrets)
    for key, kind, delete in deletes:
        for ns, name in found[key]:
            what = f"delete {kind} {ns}/{name}"
            if api_call(partial(_delete, delete, ns, name), what, missing_ok=True):
                deleted[key].append(f"{ns}/{name}")

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
