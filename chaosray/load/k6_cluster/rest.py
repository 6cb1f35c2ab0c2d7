"""k6's REST API in a pod, reached through the API server (no activities)."""

from __future__ import annotations

import json
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Secrets

from chaosray.k8s.proxy import api_proxy, port_forward_http
from chaosray.load.k6_cluster.names import API_PORT

__all__: list[str] = []  # engine; the control is chaosray.load.control

STOP_BODY = {"data": {"type": "status", "id": "default", "attributes": {"stopped": True}}}


class K6RestApi:
    """k6's REST API in a pod, through the API server: the pod proxy first,
    then a port-forward. `route` is the route that answered last; the pod
    proxy stops being tried first only once it failed in a way that waiting
    does not mend (refused by RBAC, or no answer in time). A 5xx from the API
    server means it reached the pod and k6 was not listening yet: while k6
    starts, a port-forward a moment later can answer where the proxy did not,
    and that race must not decide the route for the rest of the run."""

    def __init__(self, secrets: Secrets, namespace: str, pod: str, timeout: float = 10.0) -> None:
        self.secrets = secrets
        self.namespace = namespace
        self.pod = pod
        self.timeout = timeout
        self.route: str | None = None
        self.proxy_first = True

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """Send one request to k6's REST API; its JSON answer. Raises
        ``ActivityFailed`` naming why each route failed."""
        errors = []
        routes = [("pod proxy", self._via_proxy), ("port-forward", self._via_port_forward)]
        if not self.proxy_first:
            routes.reverse()
        for name, send in routes:
            try:
                status, data = send(method, path, body)
            except Exception as exc:  # each route fails in its own way; report them all
                errors.append(f"{name}: {exc}")
                if name == "pod proxy":
                    self.proxy_first = False
                continue
            if not 200 <= status < 300:
                text = data.decode("utf-8", "replace")[:300]
                errors.append(f"{name}: HTTP {status} {text}")
                if name == "pod proxy" and status < 500:
                    self.proxy_first = False
                continue
            self.route = name
            try:
                answer: dict[str, Any] = json.loads(data or b"{}")
            except ValueError:
                answer = {}
            return answer
        raise ActivityFailed(
            f"k6's REST API in pod {self.namespace}/{self.pod} cannot be reached through the "
            f"API server ({'; '.join(errors)}). chaosray needs pods/proxy or pods/portforward "
            "in that namespace"
        )

    def _via_proxy(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        return api_proxy(
            method, "pods", self.namespace, f"{self.pod}:{API_PORT}", path,
            body=body, headers={"Content-Type": "application/json"},
            timeout=self.timeout, secrets=self.secrets,
        )  # fmt: skip

    def _via_port_forward(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        return port_forward_http(
            self.namespace, self.pod, API_PORT, method, path,
            body=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            timeout=self.timeout, secrets=self.secrets,
        )  # fmt: skip
