"""What is checked before an in-cluster k6 run starts (no activities)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Secrets

from chaosray.inference import InferenceTarget
from chaosray.k8s.client import REQUEST_TIMEOUT, custom_objects
from chaosray.k8s.pods import api_call
from chaosray.k8s.proxy import api_proxy
from chaosray.load.k6_cluster.names import TESTRUN_API, TESTRUN_CRD

__all__: list[str] = []  # engine; the control is chaosray.load.control


def require_testrun_crd(namespace: str, secrets: Secrets) -> None:
    """Fail clearly when the k6-operator's TestRun CRD is not installed."""
    group, version, plural = TESTRUN_API
    api = custom_objects(secrets)
    found = api_call(
        lambda: api.list_namespaced_custom_object(
            group, version, namespace, plural, limit=1, _request_timeout=REQUEST_TIMEOUT
        ),
        f"list TestRuns in {namespace}",
        missing_ok=True,
    )
    if found is None:
        raise ActivityFailed(
            f"k6-operator is not installed: the TestRun CRD {TESTRUN_CRD} is missing "
            "(install the k6-operator, or use mode 'job')"
        )


def is_cluster_url(url: str) -> bool:
    """A Kubernetes Service's DNS name (``name.namespace.svc[.cluster.local]``)."""
    host = urlsplit(url).hostname or ""
    return bool(re.match(r"^[a-z0-9-]+\.[a-z0-9-]+\.svc(\.[a-z0-9.-]+)?$", host))


def preflight_through_service_proxy(
    url: str, method: str, payload: str, expect_status: list[int] | None, secrets: Secrets
) -> None:
    """Send one request to an in-cluster URL (``http://svc.ns.svc:port/path``)
    through the API server's service proxy; raise ``ActivityFailed`` unless it
    answers with an accepted status."""
    target = InferenceTarget.build(url, method, payload, expect_status=expect_status)
    parts = urlsplit(url)
    service, namespace = (parts.hostname or "").split(".")[:2]
    port = parts.port or (443 if parts.scheme == "https" else 80)
    scheme = "https:" if parts.scheme == "https" else ""
    body: Any = None
    content_type = "application/json"
    if target.method != "GET" and target.payload is not None:
        body = target.payload
        if isinstance(body, str):
            content_type = "text/plain"
    try:
        status, data = api_proxy(
            target.method, "services", namespace, f"{scheme}{service}:{port}", parts.path,
            query=dict(parse_qsl(parts.query)) or None, body=body,
            headers={"Content-Type": content_type}, secrets=secrets,
        )  # fmt: skip
        detail = data.decode("utf-8", "replace")[:200]
    except Exception as exc:
        raise ActivityFailed(
            f"k6 target {url} does not answer through the API server's service proxy: {exc}"
        ) from None
    if status not in target.expect_status:
        raise ActivityFailed(
            f"k6 target {url} does not answer through the API server's service proxy: "
            f"HTTP {status}" + (f" {detail.strip()}" if detail.strip() else "")
        )
