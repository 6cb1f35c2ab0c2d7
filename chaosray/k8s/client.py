"""The one Kubernetes client factory of the project.

It follows chaostoolkit-kubernetes' conventions, so users configure us as
they configure it: a kubeconfig (``KUBECONFIG``, else ``~/.kube/config``) with
an optional ``KUBERNETES_CONTEXT``; inside a pod with
``CHAOSTOOLKIT_IN_POD=true``, the pod's service account; otherwise
``KUBERNETES_HOST`` with ``KUBERNETES_API_KEY`` (and
``KUBERNETES_API_KEY_PREFIX``), ``KUBERNETES_CERT_FILE``/``KUBERNETES_KEY_FILE``,
``KUBERNETES_CA_CERT_FILE`` and ``KUBERNETES_VERIFY_SSL``. Each key is looked
up in the experiment's ``secrets`` first, then in the environment.

Unlike chaostoolkit-kubernetes, each client gets its own configuration object
(no process-wide default is changed), so two contexts can be used side by
side, and clients are cached per target.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Secrets
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

__all__: list[str] = []  # factory, not an activity

# Every API call passes a timeout: (connect, read) seconds.
REQUEST_TIMEOUT = (5.0, 30.0)

_cache: dict[tuple[Any, ...], client.ApiClient] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class KubeTarget:
    """Which cluster a client talks to, for messages and the context allow-list."""

    source: str  # "kubeconfig", "in-pod" or "environment"
    context: str | None
    host: str


def _lookup(secrets: Secrets, key: str, default: str | None = None) -> str | None:
    scoped: dict[str, Any] = dict(secrets or {})
    value = scoped.get(key, os.environ.get(key, default))
    return None if value is None else str(value)


def kubeconfig_paths() -> list[Path]:
    """The kubeconfig files in use: ``KUBECONFIG`` (a list separated by
    ``os.pathsep``, as kubectl reads it; files that do not exist are left
    out, as kubectl does), else ``~/.kube/config``."""
    listed = os.environ.get("KUBECONFIG") or "~/.kube/config"
    paths = [Path(os.path.expanduser(p)) for p in listed.split(os.pathsep) if p]
    return [p for p in paths if p.is_file()]


def resolve_target(secrets: Secrets = None) -> KubeTarget:
    """Which cluster the current settings point at, without connecting."""
    paths = kubeconfig_paths()
    if paths:
        # The client merges a list the way kubectl does (first file wins).
        merged = os.pathsep.join(str(p) for p in paths)
        shown = ", ".join(str(p) for p in paths)
        wanted = _lookup(secrets, "KUBERNETES_CONTEXT")
        try:
            contexts, active = config.list_kube_config_contexts(merged)
        except ConfigException as exc:
            raise ActivityFailed(f"kubeconfig {shown} cannot be read: {exc}") from None
        names = [c["name"] for c in contexts or []]
        name = wanted or (active or {}).get("name")
        if wanted and wanted not in names:
            raise ActivityFailed(
                f"Kubernetes context {wanted!r} is not in {shown} (contexts: {', '.join(names)})"
            )
        return KubeTarget("kubeconfig", name, merged)
    if os.environ.get("CHAOSTOOLKIT_IN_POD") == "true":
        return KubeTarget("in-pod", None, "in-cluster")
    host = _lookup(secrets, "KUBERNETES_HOST")
    if not host:
        raise ActivityFailed(
            f"no Kubernetes configuration: no kubeconfig at "
            f"{os.environ.get('KUBECONFIG') or '~/.kube/config'}, CHAOSTOOLKIT_IN_POD is not "
            "true and KUBERNETES_HOST is not set. Point KUBECONFIG at your cluster's kubeconfig."
        )
    return KubeTarget("environment", None, host)


def api_client(secrets: Secrets = None) -> client.ApiClient:
    """A cached ``ApiClient`` for the cluster the settings point at."""
    target = resolve_target(secrets)
    verify = _lookup(secrets, "KUBERNETES_VERIFY_SSL")
    key: tuple[Any, ...] = (target, verify)
    if target.source == "environment":
        key += tuple(
            _lookup(secrets, k)
            for k in ("KUBERNETES_API_KEY", "KUBERNETES_CERT_FILE", "KUBERNETES_CA_CERT_FILE")
        )
    elif target.source == "kubeconfig":
        key += tuple(p.stat().st_mtime_ns for p in kubeconfig_paths())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        built = _build(target, secrets)
        _cache[key] = built
        return built


def _build(target: KubeTarget, secrets: Secrets) -> client.ApiClient:
    configuration = client.Configuration()
    if target.source == "kubeconfig":
        try:
            config.load_kube_config(
                config_file=target.host,
                context=target.context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError) as exc:
            raise ActivityFailed(
                f"kubeconfig {target.host} (context {target.context}) is unusable: {exc}"
            ) from None
    elif target.source == "in-pod":
        loader = config.incluster_config.InClusterConfigLoader(
            token_filename=config.incluster_config.SERVICE_TOKEN_FILENAME,
            cert_filename=config.incluster_config.SERVICE_CERT_FILENAME,
        )
        loader.load_and_set(configuration)
    else:
        configuration.host = target.host
        configuration.verify_ssl = _lookup(secrets, "KUBERNETES_VERIFY_SSL") is not None
        configuration.ssl_ca_cert = _lookup(secrets, "KUBERNETES_CA_CERT_FILE")
        api_key = _lookup(secrets, "KUBERNETES_API_KEY")
        if api_key:
            configuration.api_key["authorization"] = api_key
            configuration.api_key_prefix["authorization"] = (
                _lookup(secrets, "KUBERNETES_API_KEY_PREFIX") or "Bearer"
            )
        elif _lookup(secrets, "KUBERNETES_CERT_FILE"):
            configuration.cert_file = _lookup(secrets, "KUBERNETES_CERT_FILE")
            configuration.key_file = _lookup(secrets, "KUBERNETES_KEY_FILE")
    # One layer of retries only: chaosray.retry retries reads; urllib3's own
    # (3 by default) would multiply each attempt against an unresponsive server.
    configuration.retries = 0
    if os.environ.get("HTTP_PROXY"):
        configuration.proxy = os.environ["HTTP_PROXY"]
    if os.environ.get("NO_PROXY"):
        configuration.no_proxy = os.environ["NO_PROXY"]
    return client.ApiClient(configuration)


def core_v1_for_streams(secrets: Secrets = None) -> client.CoreV1Api:
    """A CoreV1Api on a client of its own, for exec/port-forward streams: the
    kubernetes client's ``stream()`` swaps the ApiClient's request function
    while it runs, which would turn other threads' requests on a shared
    client (a watch, say) into websocket handshakes."""
    return client.CoreV1Api(_build(resolve_target(secrets), secrets))


def core_v1(secrets: Secrets = None) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(secrets))


def apps_v1(secrets: Secrets = None) -> client.AppsV1Api:
    return client.AppsV1Api(api_client(secrets))


def policy_v1(secrets: Secrets = None) -> client.PolicyV1Api:
    return client.PolicyV1Api(api_client(secrets))


def batch_v1(secrets: Secrets = None) -> client.BatchV1Api:
    return client.BatchV1Api(api_client(secrets))


def discovery_v1(secrets: Secrets = None) -> client.DiscoveryV1Api:
    return client.DiscoveryV1Api(api_client(secrets))


def custom_objects(secrets: Secrets = None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client(secrets))
