"""A bearer-token kubeconfig, as EKS users have: a ServiceAccount's token,
not the admin's client certificate. The lab writes chaosray's
(``lab.write_chaosray_kubeconfig``), and so does the test cluster
(``tests/rig/kube.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client


def _admin_cluster(admin: dict[str, Any]) -> dict[str, Any]:
    """The cluster entry of the admin kubeconfig's current context, or its
    first cluster when it names none."""
    clusters: list[dict[str, Any]] = admin["clusters"]
    current = admin.get("current-context")
    for context in admin.get("contexts") or []:
        if context["name"] == current:
            for entry in clusters:
                if entry["name"] == context["context"]["cluster"]:
                    return entry
    return clusters[0]


def write_token_kubeconfig(
    core: client.CoreV1Api,
    admin_kubeconfig: Path,
    path: Path,
    *,
    service_account: str,
    namespace: str,
    context: str,
    seconds: int,
) -> Path:
    """Write to ``path`` (mode 0600) a kubeconfig that authenticates with a
    token of ``namespace/service_account`` valid for ``seconds``, for the
    cluster (server, CA) of ``admin_kubeconfig``; return ``path``."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    token = core.create_namespaced_service_account_token(
        service_account, namespace, request
    ).status.token
    entry = _admin_cluster(yaml.safe_load(admin_kubeconfig.read_text()))
    ca = entry["cluster"].get("certificate-authority")
    if ca and not Path(ca).is_absolute():  # relative to the admin kubeconfig
        entry["cluster"]["certificate-authority"] = str(admin_kubeconfig.parent / ca)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [entry],
                "users": [{"name": service_account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": context,
                        "context": {"cluster": entry["name"], "user": service_account},
                    }
                ],
                "current-context": context,
            }
        )
    )
    path.chmod(0o600)
    return path
