"""The test cluster is the real thing: real controllers recreate, evict,
schedule and refuse as on EKS."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaosray.wait import wait_until
from tests.rig.kube import HEAD, NAMESPACE, REDIS, WORKERS, KubeCluster, make_test_pod, ready_pods


def _evict(core: client.CoreV1Api, name: str) -> None:
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=NAMESPACE))
    core.create_namespaced_pod_eviction(name, NAMESPACE, body)


def _cordon(core: client.CoreV1Api, node: str) -> None:
    core.patch_node(node, {"spec": {"unschedulable": True}})


def test_kuberay_replaces_a_deleted_worker(topology: KubeCluster) -> None:
    core = topology.core()
    before = {p.metadata.name for p in ready_pods(core, WORKERS)}
    victim = sorted(before)[0]
    core.delete_namespaced_pod(victim, NAMESPACE)
    wait_until(
        lambda: (
            len(ready_pods(core, WORKERS)) == 3
            and victim not in {p.metadata.name for p in ready_pods(core, WORKERS)}
        ),
        timeout=60,
        description="KubeRay to create a Ready replacement worker",
    )
    after = {p.metadata.name for p in ready_pods(core, WORKERS)}
    assert victim not in after
    assert len(after - before) == 1  # one new pod, with a new name, made by the operator
    new = next(p for p in ready_pods(core, WORKERS) if p.metadata.name in after - before)
    assert new.metadata.owner_references[0].kind == "RayCluster"
    # The anti-affinity holds for the replacement too.
    assert len({p.spec.node_name for p in ready_pods(core, WORKERS)}) == 3


def test_statefulset_recreates_a_deleted_redis_pod_with_the_same_name(
    topology: KubeCluster,
) -> None:
    core = topology.core()
    old = core.read_namespaced_pod("redis-1", NAMESPACE)
    core.delete_namespaced_pod("redis-1", NAMESPACE)

    def recreated() -> bool:
        pods = {p.metadata.name: p for p in ready_pods(core, REDIS)}
        return "redis-1" in pods and pods["redis-1"].metadata.uid != old.metadata.uid

    wait_until(recreated, timeout=60, description="redis-1 to be recreated and Ready")
    assert len(ready_pods(core, REDIS)) == 3


def test_pdb_refuses_a_second_worker_eviction_with_429(topology: KubeCluster) -> None:
    core = topology.core()
    workers = ready_pods(core, WORKERS)
    used = {p.spec.node_name for p in workers}
    free = [n.metadata.name for n in core.list_node().items if n.metadata.name not in used]
    first = workers[0]
    # Leave the replacement nowhere to go: the free node and the victim's node are cordoned.
    for node in [*free, first.spec.node_name]:
        _cordon(core, node)
    _evict(core, first.metadata.name)  # allowed: 3 healthy, minAvailable 2
    policy = client.PolicyV1Api(topology.api())
    wait_until(
        lambda: (
            policy.read_namespaced_pod_disruption_budget(
                "ray-worker-pdb", NAMESPACE
            ).status.disruptions_allowed
            == 0
            and len(ready_pods(core, WORKERS)) == 2
        ),
        timeout=30,
        description="the PDB to see one worker gone",
    )
    with pytest.raises(ApiException) as refused:
        _evict(core, workers[1].metadata.name)
    assert refused.value.status == 429
    assert "disruption budget" in refused.value.body
    assert len(ready_pods(core, WORKERS)) == 2  # nothing more was evicted
    pending = [
        p
        for p in core.list_namespaced_pod(NAMESPACE, label_selector=WORKERS).items
        if p.status.phase == "Pending"
    ]
    assert len(pending) == 1  # the replacement waits for a schedulable node


def test_a_cordoned_node_receives_no_new_pod(topology: KubeCluster) -> None:
    core = topology.core()
    node = core.list_node().items[0].metadata.name
    _cordon(core, node)
    core.create_namespaced_pod(NAMESPACE, make_test_pod("pinned-to-cordoned", node=node))

    def unschedulable() -> bool:
        got = core.read_namespaced_pod("pinned-to-cordoned", NAMESPACE)
        return any(
            c.type == "PodScheduled" and c.reason == "Unschedulable"
            for c in got.status.conditions or []
        )

    wait_until(unschedulable, timeout=30, description="the scheduler to refuse the pod")
    assert core.read_namespaced_pod("pinned-to-cordoned", NAMESPACE).spec.node_name is None


def test_the_load_balancer_service_has_an_ingress_address(topology: KubeCluster) -> None:
    service = topology.core().read_namespaced_service("ray-serve-nlb", NAMESPACE)
    assert service.spec.type == "LoadBalancer"
    assert service.status.load_balancer.ingress[0].ip == "127.0.0.1"


def test_one_head_and_workers_on_distinct_nodes(topology: KubeCluster) -> None:
    core = topology.core()
    assert len(ready_pods(core, HEAD)) == 1
    nodes = [p.spec.node_name for p in ready_pods(core, WORKERS)]
    assert len(nodes) == len(set(nodes)) == 3
