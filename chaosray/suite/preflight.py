"""What ``chaosray suite run`` checks before it runs anything.

Each check ends in one line naming what is wrong, and the suite exits 2
with nothing changed: var files that do not parse or set unknown keys,
settings out of range, a kube context outside the allow-list, an API server
that cannot be reached or does not answer within a bounded time (one
request, no retries), credentials it refuses, a missing namespace,
RayCluster or load balancer address.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import urllib3.exceptions
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from chaosray.guard import BadSettings, check_var_file, known_configuration_keys
from chaosray.k8s.client import KubeTarget, api_client
from chaosray.k8s.safety import ALLOWED_CONTEXTS_KEY, allowed_contexts

__all__: list[str] = []  # part of the suite command

API_TIMEOUT = (5.0, 10.0)  # connect, read: one request, bounded


class PreflightFailed(Exception):
    """One line for the user; the suite exits 2."""


def declarations(experiments_dir: Path) -> dict[str, Any]:
    """Every configuration key the experiments declare, with its declaration
    (the first experiment that declares a key gives it)."""
    declared: dict[str, Any] = {}
    for path in sorted(experiments_dir.glob("*.json")):
        for key, value in (json.loads(path.read_text()).get("configuration") or {}).items():
            declared.setdefault(key, value)
    return declared


def effective_configuration(
    experiments_dir: Path, var_files: list[Path], overrides: dict[str, Any]
) -> dict[str, Any]:
    """The configuration the experiments will run with, as Chaos Toolkit
    resolves it: the command line's overrides, then the var files (the last
    one wins), then each key's environment variable, then its default."""
    resolved: dict[str, Any] = {}
    for key, declaration in declarations(experiments_dir).items():
        if isinstance(declaration, dict) and declaration.get("type") == "env":
            value = os.environ.get(str(declaration.get("key")), declaration.get("default"))
        else:
            value = declaration
        resolved[key] = value
    known = set(resolved) | known_configuration_keys()
    for path in var_files:
        try:
            data = check_var_file(path, known)
        except BadSettings as exc:
            raise PreflightFailed(str(exc)) from None
        resolved.update(data.get("configuration") or {})
    resolved.update(overrides)
    return resolved


def check_context(target: KubeTarget, configuration: dict[str, Any]) -> None:
    allowed = allowed_contexts(configuration)
    if allowed and target.context not in allowed:
        raise PreflightFailed(
            f"Kubernetes context {target.context!r} is not allowed "
            f"({ALLOWED_CONTEXTS_KEY}: {', '.join(allowed)}); nothing was run"
        )


def _user_of(target: KubeTarget) -> str | None:
    if target.source != "kubeconfig":
        return None
    try:
        contexts, _active = config.list_kube_config_contexts(target.host)
    except Exception:
        return None
    for context in contexts or []:
        if context.get("name") == target.context:
            return str((context.get("context") or {}).get("user"))
    return None


def _who(target: KubeTarget) -> str:
    user = _user_of(target)
    where = f"context {target.context!r}" if target.context else target.source
    return f"{where}" + (f", user {user!r}" if user else "")


def check_cluster(target: KubeTarget, configuration: dict[str, Any]) -> None:
    """The API server answers one request in bounded time and accepts our
    credentials; the namespace, the RayCluster and (without an explicit
    inference URL) the load balancer address exist."""
    try:
        api = api_client()
    except ActivityFailed as exc:
        raise PreflightFailed(str(exc)) from None
    host = api.configuration.host
    namespace = str(configuration.get("namespace") or "default")
    core = client.CoreV1Api(api)
    try:
        # Any authenticated user may read /version; listing pods needs our RBAC.
        client.VersionApi(api).get_code(_request_timeout=API_TIMEOUT)
        core.list_namespaced_pod(namespace, limit=1, _request_timeout=API_TIMEOUT)
    except ApiException as exc:
        if exc.status in (401, 403):
            raise PreflightFailed(
                f"the API server {host} refused {_who(target)}: {exc.status} {exc.reason}"
                + (f" (listing pods in namespace {namespace!r})" if exc.status == 403 else "")
            ) from None
        raise PreflightFailed(f"the API server {host} answered {exc.status} {exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        cause = getattr(exc, "reason", None) or exc
        raise PreflightFailed(
            f"the API server {host} cannot be reached ({_who(target)}): {_short(cause)}"
        ) from None
    _check_namespace(core, namespace)
    _check_raycluster(api, namespace, str(configuration.get("ray_cluster") or ""))
    if not configuration.get("inference_url"):
        _check_nlb(core, namespace, str(configuration.get("nlb_service") or ""))


def _short(cause: object) -> str:
    """urllib3's wrapped socket error, as the socket said it."""
    text = str(cause)
    errno_text = re.search(r"\[Errno -?\d+\] (.*)$", text)
    if errno_text:
        return errno_text.group(1)
    return text.split(">: ", 1)[-1]


def _check_namespace(core: client.CoreV1Api, namespace: str) -> None:
    try:
        core.read_namespace(namespace, _request_timeout=API_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise PreflightFailed(f"namespace {namespace!r} does not exist (--namespace)") from None
        # 403: reading namespaces is not in every user's RBAC; the RayCluster
        # check below still tells a missing namespace apart.


def _check_raycluster(api: client.ApiClient, namespace: str, name: str) -> None:
    if not name:
        return
    custom = client.CustomObjectsApi(api)
    try:
        custom.get_namespaced_custom_object(
            "ray.io", "v1", namespace, "rayclusters", name, _request_timeout=API_TIMEOUT
        )
    except ApiException as exc:
        if exc.status != 404:
            raise PreflightFailed(
                f"RayCluster {name!r} in namespace {namespace!r} cannot be read: "
                f"{exc.status} {exc.reason}"
            ) from None
        try:
            listing = custom.list_namespaced_custom_object(
                "ray.io", "v1", namespace, "rayclusters", _request_timeout=API_TIMEOUT
            )
            names = [item["metadata"]["name"] for item in listing.get("items") or []]
        except ApiException:
            names = []
        there = f" (RayClusters there: {', '.join(names)})" if names else " (none there)"
        raise PreflightFailed(
            f"RayCluster {name!r} not found in namespace {namespace!r}{there} (--ray-cluster)"
        ) from None


def _check_nlb(core: client.CoreV1Api, namespace: str, service: str) -> None:
    if not service:
        return
    try:
        found = core.read_namespaced_service(service, namespace, _request_timeout=API_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise PreflightFailed(
                f"Service {service!r} not found in namespace {namespace!r} "
                "(--nlb-service, or --inference-url)"
            ) from None
        raise PreflightFailed(f"Service {service!r} cannot be read: {exc.status}") from None
    ingress = found.status.load_balancer.ingress if found.status.load_balancer else None
    if not ingress:
        raise PreflightFailed(
            f"Service {namespace}/{service} has no load balancer address yet "
            "(status.loadBalancer.ingress is empty); wait for it, or pass --inference-url"
        )
