"""Names of the local Ray cluster's KubeRay labels, and the pod-IP patch
the API-proxy tests use to route a kwok pod's proxy to a real local server.

Zombies, reconnection and head loss are tested on the lab, with real pods
(tests/lab/): no pod here stands for a Ray node any more.
"""

from __future__ import annotations

from kubernetes import client

from tests.rig.kube import NAMESPACE

RIG_CLUSTER = "rig-ray"


def set_pod_ip(core: client.CoreV1Api, name: str, ip: str) -> None:
    """Give a kwok pod the IP of the thing it stands for (a merge patch, so
    the list of pod IPs is replaced, not merged)."""
    core.patch_namespaced_pod_status(
        name,
        NAMESPACE,
        {"status": {"podIP": ip, "podIPs": [{"ip": ip}]}},
        _content_type="application/merge-patch+json",
    )


def pod_ip_is(core: client.CoreV1Api, name: str, ip: str | None) -> bool:
    """The pod has an IP (``ip`` None), or exactly ``ip``."""
    current = core.read_namespaced_pod(name, NAMESPACE).status.pod_ip
    return bool(current) if ip is None else current == ip
