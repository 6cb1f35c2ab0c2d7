"""Kubernetes pods that stand for the nodes of the local Ray cluster.

kwok pods run nothing; these carry KubeRay's labels for a cluster named
``rig-ray`` and, as pod IPs, the loopback addresses of the local Ray nodes,
so that probes matching pods to Ray's node table (zombies, reconnection) see
a consistent picture: the pods are Kubernetes' view, the Ray nodes are real.
"""

from __future__ import annotations

from functools import partial

from kubernetes import client

from chaosray.wait import wait_until
from tests.rig.kube import NAMESPACE, make_test_pod
from tests.rig.ray_cluster import LocalRayCluster

RIG_CLUSTER = "rig-ray"
RIG_HEAD = f"ray.io/cluster={RIG_CLUSTER},ray.io/node-type=head"
RIG_WORKERS = f"ray.io/cluster={RIG_CLUSTER},ray.io/node-type=worker"


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


def stand_in_pods(core: client.CoreV1Api, ray_cluster: LocalRayCluster) -> None:
    """Pods labelled as KubeRay labels a cluster's pods, whose pod IPs are the
    local Ray nodes' addresses (so the probes can match pods to Ray nodes)."""
    nodes = [("head", ray_cluster.head), *(("worker", w) for w in ray_cluster.live_workers())]
    for index, (kind, node) in enumerate(nodes):
        assert node is not None
        name = f"rig-ray-{kind}-{index}"
        labels = {"ray.io/cluster": RIG_CLUSTER, "ray.io/node-type": kind}
        core.create_namespaced_pod(NAMESPACE, make_test_pod(name, labels))
        wait_until(partial(pod_ip_is, core, name, None), timeout=30, description=f"{name} running")
        set_pod_ip(core, name, node.ip)
        wait_until(
            partial(pod_ip_is, core, name, node.ip),
            timeout=10,
            description=f"{name} to carry {node.ip}",
        )


def new_head_pod(core: client.CoreV1Api, ray_cluster: LocalRayCluster, name: str) -> None:
    """A replacement head pod, as KubeRay would create, with the head's IP."""
    assert ray_cluster.head is not None
    labels = {"ray.io/cluster": RIG_CLUSTER, "ray.io/node-type": "head"}
    core.create_namespaced_pod(NAMESPACE, make_test_pod(name, labels))
    wait_until(partial(pod_ip_is, core, name, None), timeout=30, description=f"{name} running")
    set_pod_ip(core, name, ray_cluster.head.ip)
