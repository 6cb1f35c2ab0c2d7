"""Reaching the Ray dashboard and finding KubeRay's pods (no activities).

By default the dashboard is reached through the Kubernetes API server's
service proxy to the head service (``<cluster>-head-svc``, port ``dashboard``),
authenticated like every API call, so a user needs nothing but a kubeconfig;
when the API server cannot reach the head pod, through a port-forward to it.
An explicit ``dashboard_url`` is used as is (an ingress, a local cluster).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Secrets
from kubernetes.client.exceptions import ApiException

from chaosray.k8s.client import REQUEST_TIMEOUT, core_v1, custom_objects
from chaosray.k8s.pods import api_call, api_error, is_terminating
from chaosray.k8s.proxy import answer_text, api_proxy, api_server_cannot_reach, port_forward_http
from chaosray.retry import retry_read

__all__: list[str] = []  # helpers, not activities

DASHBOARD_TIMEOUT = (5.0, 15.0)
CLUSTER_LABEL = "ray.io/cluster"
NODE_TYPE_LABEL = "ray.io/node-type"
GROUP_LABEL = "ray.io/group"
DEFAULT_DASHBOARD_PORT = 8265  # KubeRay's default for the head's "dashboard" port


class DashboardUnreachable(ActivityFailed):  # type: ignore[misc]
    """The dashboard did not answer (the head is down, the URL is wrong)."""


KINDS = {"rayclusters": "RayCluster", "rayservices": "RayService"}


def read_ray_object(plural: str, name: str, namespace: str, secrets: Secrets) -> dict[str, Any]:
    """A KubeRay object (``rayclusters`` or ``rayservices``), with a clear
    message when it does not exist."""
    kind = KINDS[plural]
    obj = api_call(
        lambda: custom_objects(secrets).get_namespaced_custom_object(
            "ray.io", "v1", namespace, plural, name, _request_timeout=REQUEST_TIMEOUT
        ),
        f"read {kind} {name}",
        retry=True,
        missing_ok=True,
    )
    if obj is None:
        raise ActivityFailed(f"{kind} {name!r} does not exist in namespace {namespace!r}")
    return dict(obj)


def resolve_cluster_name(
    namespace: str,
    cluster: str | None,
    service: str | None,
    secrets: Secrets,
) -> str:
    """The RayCluster to look at: `cluster`, or the active cluster of RayService
    `service` (it changes when the RayService rolls to a new cluster)."""
    if cluster:
        return cluster
    if not service:
        raise ActivityFailed("name the RayCluster (`cluster`) or the RayService (`service`)")
    obj = read_ray_object("rayservices", service, namespace, secrets)
    active = (obj.get("status") or {}).get("activeServiceStatus") or {}
    name = active.get("rayClusterName")
    if not name:
        raise ActivityFailed(f"RayService {namespace}/{service} has no active RayCluster yet")
    return str(name)


def ray_selector(cluster: str, node_type: str | None = None, group: str | None = None) -> str:
    """KubeRay's labels for a cluster's pods (head, workers, a worker group)."""
    parts = [f"{CLUSTER_LABEL}={cluster}"]
    if node_type:
        parts.append(f"{NODE_TYPE_LABEL}={node_type}")
    if group:
        parts.append(f"{GROUP_LABEL}={group}")
    return ",".join(parts)


@dataclass(frozen=True)
class Dashboard:
    """One way to the Ray dashboard: an explicit URL, or the API server proxy."""

    namespace: str
    cluster: str
    url: str | None = None
    head_service: str | None = None
    port_name: str = "dashboard"

    @classmethod
    def for_cluster(
        cls, namespace: str, cluster: str, url: str | None, head_service: str | None
    ) -> Dashboard:
        """``url`` when given, else the API server's proxy to the head service."""
        if url:
            return cls(namespace, cluster, url=url)
        return cls(namespace, cluster, head_service=head_service)

    @property
    def where(self) -> str:
        if self.url:
            return self.url
        service = f"{self.namespace}/{self.service_name}:{self.port_name}"
        return f"the API server's proxy to service {service}"

    @property
    def service_name(self) -> str:
        return self.head_service or f"{self.cluster}-head-svc"

    def get(self, path: str, params: dict[str, str] | None = None, secrets: Secrets = None) -> Any:
        """GET a dashboard path (reads are retried on transient errors); the
        parsed JSON. Through the API server's service proxy first; when the
        API server cannot reach the head pod (EKS with restricted security
        groups), through a port-forward to the head pod. Raises
        ``DashboardUnreachable`` when it does not answer."""
        query = f"?{urlencode(params)}" if params else ""

        def once() -> Any:
            if self.url:
                answer = requests.get(
                    f"{self.url.rstrip('/')}/{path.lstrip('/')}{query}", timeout=DASHBOARD_TIMEOUT
                )
                answer.raise_for_status()
                return _parse(answer.content)
            status, body = api_proxy(
                "GET", "services", self.namespace, f"{self.service_name}:{self.port_name}",
                path, query=params, timeout=DASHBOARD_TIMEOUT[1], secrets=secrets,
            )  # fmt: skip
            if api_server_cannot_reach(status, body):
                status, body = self._via_port_forward(path, query, secrets, body)
            if status >= 400:
                raise _ProxyError(status, body)
            return _parse(body)

        try:
            return retry_read(once, description=f"Ray dashboard {path}", attempts=2)
        except _ProxyError as exc:
            raise DashboardUnreachable(
                f"Ray dashboard via {self.where}: HTTP {exc.status} {exc.message}"
            ) from None
        except (requests.RequestException, OSError, ValueError) as exc:
            raise DashboardUnreachable(
                f"Ray dashboard at {self.where} does not answer: {exc}"
            ) from None

    def _via_port_forward(
        self, path: str, query: str, secrets: Secrets, proxy_answer: bytes
    ) -> tuple[int, bytes]:
        """The same GET over a port-forward to the head pod's dashboard port."""
        core = core_v1(secrets)
        pods = retry_read(
            lambda: (
                core.list_namespaced_pod(
                    self.namespace,
                    label_selector=ray_selector(self.cluster, "head"),
                    _request_timeout=REQUEST_TIMEOUT,
                ).items
            ),
            description="list the Ray head pod",
        )
        running = [p for p in pods if p.status.phase == "Running" and not is_terminating(p)]
        proxied = answer_text(proxy_answer)
        if not running:
            raise DashboardUnreachable(
                f"Ray dashboard via {self.where}: {proxied}; and no running head pod "
                f"({ray_selector(self.cluster, 'head')}) to port-forward to"
            )
        pod = running[0]
        port = DEFAULT_DASHBOARD_PORT
        for container in pod.spec.containers:
            for entry in container.ports or []:
                if entry.name == self.port_name:
                    port = int(entry.container_port)
        forward = f"port-forward to pod {self.namespace}/{pod.metadata.name}:{port}"
        try:
            return port_forward_http(
                self.namespace, pod.metadata.name, port, "GET", f"/{path.lstrip('/')}{query}",
                headers={"Accept": "application/json"}, timeout=DASHBOARD_TIMEOUT[1],
                secrets=secrets,
            )  # fmt: skip
        except (ConnectionError, TimeoutError, ApiException) as exc:
            # An ApiException's own text holds the response body: api_error's does not.
            failed = api_error(exc, forward) if isinstance(exc, ApiException) else exc
            raise DashboardUnreachable(
                f"Ray dashboard via {self.where}: {proxied}; {forward} failed too: {failed}"
            ) from None


def _parse(body: bytes) -> Any:
    """JSON when the dashboard answers JSON, else its text (health endpoints)."""
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()


class _ProxyError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.message = answer_text(body)
        super().__init__(self.message)


def nodes(dashboard: Dashboard, secrets: Secrets) -> list[dict[str, Any]]:
    """Every node of Ray's node table (ALIVE and DEAD), from the state API."""
    body = dashboard.get("api/v0/nodes", {"detail": "1", "limit": "10000"}, secrets)
    if not body.get("result"):
        raise DashboardUnreachable(f"Ray state API error: {body.get('msg')}")
    return list(body["data"]["result"]["result"])


def serve_applications(dashboard: Dashboard, secrets: Secrets) -> dict[str, Any]:
    """The dashboard's Serve REST API answer (applications, proxies, ...)."""
    return dict(dashboard.get("api/serve/applications/", None, secrets))


# The Ray node id of each head chaosray deleted, per (namespace, cluster):
# ray_head_recovery checks that node DEAD in the new head's table
# (activities of one experiment share this process).
_deleted_head_nodes: dict[tuple[str, str], str | None] = {}


def record_deleted_head(namespace: str, cluster: str, node_id: str | None) -> None:
    _deleted_head_nodes[(namespace, cluster)] = node_id


def deleted_head_node(namespace: str, cluster: str) -> str | None:
    return _deleted_head_nodes.get((namespace, cluster))
